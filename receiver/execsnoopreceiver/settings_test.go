package execsnoopreceiver

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/stretchr/testify/require"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// The chart and the README, which are pinned to Settings below.
const (
	chartDir   = "../../deploy/helm/otelcol-execsnoop"
	readmePath = "README.md"
	// durationPattern is what the chart's schema accepts for a duration.
	durationPattern = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
)

// field is the Config field a setting's key names.
func field(cfg *Config, key string) reflect.Value {
	v := reflect.ValueOf(cfg).Elem()
	for _, name := range strings.Split(key, ".") {
		t := v.Type()
		found := false
		for i := 0; i < t.NumField(); i++ {
			if strings.Split(t.Field(i).Tag.Get("mapstructure"), ",")[0] == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			panic("no setting " + key)
		}
	}
	return v
}

// format is a value as the README and the chart write it.
func format(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice && rv.Len() == 0 {
		return "[]"
	}
	switch x := v.(type) {
	case time.Duration:
		return x.String()
	case []string, []uint32:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

func isZero(v any) bool { return reflect.ValueOf(v).IsZero() || format(v) == "[]" }

func TestSettingBoundsNameSettings(t *testing.T) {
	keys := map[string]bool{}
	for _, s := range Settings() {
		keys[s.Key] = true
	}
	for k := range settingBounds {
		if !keys[k] {
			t.Errorf("settingBounds has %q, which is no setting of Config", k)
		}
	}
}

// TestValidateEnforcesSettingBounds: each bound of Settings is the one
// Validate enforces: the edges pass, one step past them fails naming the
// setting, and so does a value outside an enum.
func TestValidateEnforcesSettingBounds(t *testing.T) {
	check := func(s Setting, v any, ok bool) {
		t.Helper()
		cfg := createDefaultConfig()
		field(cfg, s.Key).Set(reflect.ValueOf(v))
		err := cfg.Validate()
		named := err != nil && strings.Contains(err.Error(), s.Key+":")
		if ok && named {
			t.Errorf("%s = %s is within the bounds of Settings, and Validate rejects it: %v", s.Key, format(v), err)
		}
		if !ok && !named {
			t.Errorf("%s = %s is out of the bounds of Settings, and Validate does not reject it (err: %v)", s.Key, format(v), err)
		}
	}
	step := func(v any, d int) any {
		switch x := v.(type) {
		case int:
			return x + d
		case time.Duration:
			return x + time.Duration(d)
		}
		panic(fmt.Sprintf("bound %v of type %T", v, v))
	}
	for _, s := range Settings() {
		if s.Min != nil {
			check(s, s.Min, true)
			check(s, step(s.Min, -1), false)
		}
		if s.Max != nil {
			check(s, s.Max, true)
			check(s, step(s.Max, 1), false)
		}
		// The enum of a list bounds each of its elements.
		value := func(e string) any {
			if s.Kind == KindStrings {
				return []string{e}
			}
			return e
		}
		for _, e := range s.Enum {
			check(s, value(e), true)
		}
		if s.Enum != nil {
			check(s, value("bogus"), false)
		}
	}
}

// schema is the chart's values.schema.json receiver block for settings.
func schema(settings []Setting) map[string]any {
	root := map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{}}
	for _, s := range settings {
		obj := root
		parts := strings.Split(s.Key, ".")
		for _, p := range parts[:len(parts)-1] {
			props := obj["properties"].(map[string]any)
			if props[p] == nil {
				props[p] = map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{}}
			}
			obj = props[p].(map[string]any)
		}
		leaf := map[string]any{}
		switch s.Kind {
		case KindBool:
			leaf["type"] = "boolean"
		case KindInt:
			leaf["type"] = "integer"
		case KindString:
			leaf["type"] = "string"
		case KindDuration:
			// The schema cannot compare durations: Validate bounds them.
			leaf["type"], leaf["pattern"] = "string", durationPattern
		case KindStrings:
			leaf["type"], leaf["items"] = "array", map[string]any{"type": "string"}
		case KindUint32s:
			leaf["type"], leaf["items"] = "array", map[string]any{"type": "integer", "minimum": 0, "maximum": math.MaxUint32}
		default:
			panic("no schema for kind " + s.Kind)
		}
		if s.Kind == KindInt && s.Min != nil {
			leaf["minimum"] = s.Min
		}
		if s.Kind == KindInt && s.Max != nil {
			leaf["maximum"] = s.Max
		}
		switch {
		case s.Enum != nil && s.Kind == KindStrings:
			leaf["items"] = map[string]any{"type": "string", "enum": s.Enum}
		case s.Enum != nil:
			leaf["enum"] = s.Enum
		}
		obj["properties"].(map[string]any)[parts[len(parts)-1]] = leaf
	}
	return root
}

// TestChartSchemaMatchesSettings: the chart's schema accepts exactly the
// receiver's settings, with their types and bounds.
func TestChartSchemaMatchesSettings(t *testing.T) {
	data, err := os.ReadFile(chartDir + "/values.schema.json")
	require.NoError(t, err)
	var file struct {
		Properties struct {
			Receiver any `json:"receiver"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(data, &file))
	want, err := json.MarshalIndent(schema(Settings()), "    ", "  ")
	require.NoError(t, err)
	var wantv any
	require.NoError(t, json.Unmarshal(want, &wantv))
	if !reflect.DeepEqual(file.Properties.Receiver, wantv) {
		got, _ := json.MarshalIndent(file.Properties.Receiver, "    ", "  ")
		t.Errorf("values.schema.json's properties.receiver differs from the receiver's Settings; it should be\n    %s\nand is\n    %s", want, got)
	}
}

// TestChartValuesAreDefaults: values.yaml's receiver block lists every
// setting, each at the receiver's default.
func TestChartValuesAreDefaults(t *testing.T) {
	cm, err := confmaptest.LoadConf(chartDir + "/values.yaml")
	require.NoError(t, err)
	sub, err := cm.Sub("receiver")
	require.NoError(t, err)
	keys := testenv.Flatten(sub.ToStringMap())
	cfg := &Config{}
	require.NoError(t, sub.Unmarshal(cfg), "values.yaml's receiver block is no receiver configuration")
	for _, s := range Settings() {
		if _, ok := keys[s.Key]; !ok {
			t.Errorf("values.yaml has no receiver.%s; add it with the default %s", s.Key, format(s.Default))
			continue
		}
		delete(keys, s.Key)
		if got := format(field(cfg, s.Key).Interface()); got != format(s.Default) {
			t.Errorf("values.yaml: receiver.%s is %s, the receiver's default is %s", s.Key, got, format(s.Default))
		}
	}
	for k := range keys {
		t.Errorf("values.yaml: receiver.%s is no setting of the receiver", k)
	}
}

// readmeRows are the README's settings table: key -> default and bounds
// cells (a row may name several keys).
func readmeRows(t *testing.T) map[string][2]string {
	data, err := os.ReadFile(readmePath)
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(data), "\n## Configuration\n")
	require.True(t, ok, "README.md has no Configuration section")
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string][2]string{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, " | ")
		if len(cells) < 4 {
			t.Errorf("README row %q has not the 4 columns Field | Default | Bounds | Meaning", line)
			continue
		}
		for _, name := range strings.Split(strings.TrimPrefix(cells[0], "| "), " / ") {
			rows[strings.Trim(name, "`")] = [2]string{cells[1], cells[2]}
		}
	}
	return rows
}

// readmeDefault is a default as the table writes it; an empty one may be
// said in words ("all", "none").
func readmeDefault(s Setting) string {
	if isZero(s.Default) && s.Kind != KindBool && s.Kind != KindInt {
		return ""
	}
	return "`" + format(s.Default) + "`"
}

func readmeBounds(s Setting) string {
	switch {
	case s.Enum != nil:
		return "`" + strings.Join(s.Enum, "`, `") + "`"
	case s.Min != nil && s.Max != nil:
		return "`" + format(s.Min) + "` .. `" + format(s.Max) + "`"
	case s.Min != nil:
		return "at least `" + format(s.Min) + "`"
	}
	return ""
}

// TestReadmeTableMatchesSettings: the README's table has one row per
// setting, with its default and bounds.
func TestReadmeTableMatchesSettings(t *testing.T) {
	rows := readmeRows(t)
	for _, s := range Settings() {
		row, ok := rows[s.Key]
		if !ok {
			t.Errorf("README.md's settings table has no row for `%s` (default %s, bounds %q)", s.Key, format(s.Default), readmeBounds(s))
			continue
		}
		delete(rows, s.Key)
		if want := readmeDefault(s); want == "" {
			if strings.Contains(row[0], "`") {
				t.Errorf("README.md: `%s` defaults to %q, which is empty: say it in words (all, none)", s.Key, row[0])
			}
		} else if row[0] != want {
			t.Errorf("README.md: `%s` defaults to %s, the table says %s", s.Key, want, row[0])
		}
		if want := readmeBounds(s); row[1] != want {
			t.Errorf("README.md: `%s`'s bounds are %q, the table says %q", s.Key, want, row[1])
		}
	}
	for k := range rows {
		t.Errorf("README.md's settings table has a row for `%s`, which is no setting", k)
	}
	if len(rows) > 0 {
		t.Log("settings:", slices.Collect(func(yield func(string) bool) {
			for _, s := range Settings() {
				yield(s.Key)
			}
		}))
	}
}
