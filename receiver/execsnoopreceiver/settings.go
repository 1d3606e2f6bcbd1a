package execsnoopreceiver

import (
	"reflect"
	"strings"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/proctable"
)

// Setting is one leaf of Config as users write it: its key, its kind, its
// default and the bounds Validate enforces. Settings is the one list the
// chart's values.schema.json and values.yaml, the README's table and the
// CLI's mirrored flags are checked against (settings_test.go, and the
// CLI's tests), so a setting added to Config alone fails them.
type Setting struct {
	Key  string // mapstructure path, e.g. "buffer.size"
	Kind Kind
	// Default is the value createDefaultConfig sets (int, bool, string,
	// time.Duration, []string or []uint32).
	Default any
	// Min and Max are inclusive bounds of an int or a duration setting
	// (nil: none); durations that must be above 0 have Min 1ns.
	Min, Max any
	// Enum lists the allowed values of a string setting, or of each
	// element of a []string setting (nil: any).
	Enum []string
}

// Kind is a setting's type as the configuration spells it.
type Kind string

const (
	KindBool     Kind = "bool"
	KindInt      Kind = "int"
	KindString   Kind = "string"
	KindDuration Kind = "duration"
	KindStrings  Kind = "[]string"
	KindUint32s  Kind = "[]uint32"
)

type bounds struct {
	min, max any
	enum     []string
}

// settingBounds are the bounds Validate enforces, keyed by setting; a
// test checks Validate against each of them at and past its edges.
var settingBounds = map[string]bounds{
	"buffer.type":                   {enum: []string{string(bpf.TransportAuto), string(bpf.TransportRingbuf), string(bpf.TransportPerf)}},
	"buffer.size":                   {min: bpf.MinBufferSize, max: bpf.MaxBufferSize},
	"buffer.drain_period":           {min: time.Nanosecond, max: bpf.MaxDrainPeriod},
	"args.max_bytes":                {min: 1, max: bpf.MaxArgsSize},
	"args.max_count":                {min: 1},
	"failed_execs":                  {enum: []string{string(bpf.FailedExecsInclude), string(bpf.FailedExecsExclude), string(bpf.FailedExecsOnly)}},
	"failed_exec_hook":              {enum: []string{string(bpf.HookAuto), string(bpf.HookFexit), string(bpf.HookSysExit)}},
	"executable.hash.max_size":      {min: 1, max: maxHashSize},
	"executable.hash.max_wait":      {min: time.Duration(0), max: maxHashWait},
	"executable.hash.cache_entries": {min: 1, max: exehash.MaxCacheEntries},
	"exec_context":                  {enum: procattr.GroupNames},
	"lineage.max_ancestors":         {min: 0, max: proctable.MaxMaxAncestors},
	"lineage.parent_args_bytes":     {min: 0, max: proctable.MaxArgsBytes},
	"lineage.max_processes":         {min: proctable.MinMaxProcesses, max: proctable.MaxMaxProcesses},
	"batch.max_size":                {min: 1},
	"batch.flush_interval":          {min: time.Nanosecond, max: maxFlushInterval},
	"traces.max_open_spans":         {min: 1},
	"traces.env_scan_bytes":         {min: 1, max: bpf.MaxEnvScanSize},
}

var kinds = map[reflect.Type]Kind{
	reflect.TypeFor[bool]():          KindBool,
	reflect.TypeFor[int]():           KindInt,
	reflect.TypeFor[string]():        KindString,
	reflect.TypeFor[time.Duration](): KindDuration,
	reflect.TypeFor[[]string]():      KindStrings,
	reflect.TypeFor[[]uint32]():      KindUint32s,
}

// Settings lists every setting of Config in field order, walked through
// the mapstructure tags. It panics on a field of a type it cannot name,
// so that a new kind of setting is added here (and to the checks) first.
func Settings() []Setting {
	var out []Setting
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			key := prefix + strings.Split(f.Tag.Get("mapstructure"), ",")[0]
			if k, ok := kinds[f.Type]; ok {
				b := settingBounds[key]
				out = append(out, Setting{Key: key, Kind: k, Default: v.Field(i).Interface(), Min: b.min, Max: b.max, Enum: b.enum})
				continue
			}
			if f.Type.Kind() != reflect.Struct {
				panic("execsnoopreceiver.Settings: " + key + " has type " + f.Type.String() + ", which has no Kind")
			}
			walk(key+".", v.Field(i))
		}
	}
	walk("", reflect.ValueOf(createDefaultConfig()).Elem())
	return out
}
