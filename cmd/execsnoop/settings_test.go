package main

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"
)

// orDefault is what bpf.Open makes of an option left at 0.
func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// mirrored are the flags that set one of the receiver's settings. The
// bounds are the receiver's (checked below); the defaults differ where
// noted, on purpose.
var mirrored = []struct {
	flag, key string
	// bool flags turn a setting to a fixed value and have no bounds.
	bool bool
	// why the CLI's default differs from the receiver's ("" if it does not).
	why string
}{
	{flag: "buffer", key: "buffer.type"},
	{flag: "buffer-size", key: "buffer.size"},
	// README "CLI": each drain costs the Go runtime several thread
	// switches, the CLI's main CPU cost; 200 ms is still live to a reader.
	{flag: "drain-period", key: "buffer.drain_period", why: "defaultDrainPeriod: a drain is most of the CLI's CPU"},
	{flag: "max-bytes", key: "args.max_bytes"},
	{flag: "max-args", key: "args.max_count"},
	{flag: "failed-exec-hook", key: "failed_exec_hook"},
	{flag: "cgroup", key: "filters.cgroup"},
	{flag: "uid", key: "filters.uids"},
	{flag: "redact", key: "redaction.patterns"},
	{flag: "no-redact", key: "redaction.enabled", bool: true},
	{flag: "executable-file", key: "executable_file", bool: true},
	{flag: "no-hash", key: "executable.hash.enabled", bool: true},
	{flag: "hash-max-size", key: "executable.hash.max_size"},
	{flag: "hash-max-wait", key: "executable.hash.max_wait"},
	{flag: "exec-context", key: "exec_context"},
	{flag: "max-ancestors", key: "lineage.max_ancestors"},
	// As libbpf-tools' execsnoop: exits and failed execs are asked for.
	{flag: "exits", key: "exits", bool: true, why: "like libbpf-tools execsnoop, exits are shown on request"},
	{flag: "fails", key: "failed_execs", bool: true, why: "like libbpf-tools execsnoop, failed execs are shown on request (-x)"},
}

// TestFlagsMirrorReceiverSettings: every mirrored flag names a setting
// of the receiver and accepts exactly that setting's bounds.
func TestFlagsMirrorReceiverSettings(t *testing.T) {
	settings := map[string]execsnoopreceiver.Setting{}
	for _, s := range execsnoopreceiver.Settings() {
		settings[s.Key] = s
	}
	parses := func(args ...string) error {
		_, err := parseFlags(args, io.Discard)
		return err
	}
	str := func(v any) string {
		if d, ok := v.(time.Duration); ok {
			return d.String()
		}
		return fmt.Sprint(v)
	}
	step := func(v any, d int) string {
		switch x := v.(type) {
		case int:
			return fmt.Sprint(x + d)
		case time.Duration:
			return (x + time.Duration(d)).String()
		}
		panic(fmt.Sprintf("bound %v of type %T", v, v))
	}
	for _, m := range mirrored {
		s, ok := settings[m.key]
		if !ok {
			t.Errorf("--%s mirrors receiver setting %s, which the receiver does not have", m.flag, m.key)
			continue
		}
		if m.bool {
			if err := parses("--" + m.flag); err != nil {
				t.Errorf("--%s: %v", m.flag, err)
			}
			continue
		}
		if !valueFlags[m.flag] {
			t.Errorf("--%s is no flag that takes a value", m.flag)
		}
		if s.Min != nil {
			if err := parses("--"+m.flag, str(s.Min)); err != nil {
				t.Errorf("--%s %s is the receiver's minimum of %s, and the CLI rejects it: %v", m.flag, str(s.Min), m.key, err)
			}
			if err := parses("--"+m.flag, step(s.Min, -1)); err == nil {
				t.Errorf("--%s %s is below the receiver's minimum of %s, and the CLI accepts it", m.flag, step(s.Min, -1), m.key)
			}
		}
		if s.Max != nil {
			if err := parses("--"+m.flag, str(s.Max)); err != nil {
				t.Errorf("--%s %s is the receiver's maximum of %s, and the CLI rejects it: %v", m.flag, str(s.Max), m.key, err)
			}
			if err := parses("--"+m.flag, step(s.Max, 1)); err == nil {
				t.Errorf("--%s %s is above the receiver's maximum of %s, and the CLI accepts it", m.flag, step(s.Max, 1), m.key)
			}
		}
		for _, e := range s.Enum {
			if err := parses("--"+m.flag, e); err != nil {
				t.Errorf("--%s %s: the receiver's %s allows it, and the CLI rejects it: %v", m.flag, e, m.key, err)
			}
		}
		if s.Enum != nil {
			if err := parses("--"+m.flag, "bogus"); err == nil {
				t.Errorf("--%s bogus: the CLI accepts what the receiver's %s does not", m.flag, m.key)
			}
		}
	}
}

// TestFlagDefaultsDifferOnlyOnPurpose: a mirrored flag's default is the
// receiver's unless mirrored says why.
func TestFlagDefaultsDifferOnlyOnPurpose(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{
		"buffer.type":              string(cfg.opts.Transport),
		"buffer.size":              fmt.Sprint(orDefault(cfg.opts.BufferSize, bpf.DefaultBufferSize)),
		"buffer.drain_period":      cfg.opts.DrainPeriod.String(),
		"args.max_bytes":           fmt.Sprint(orDefault(cfg.opts.ArgsSize, bpf.DefaultArgsSize)),
		"args.max_count":           fmt.Sprint(orDefault(cfg.opts.MaxArgs, bpf.DefaultMaxArgs)),
		"failed_exec_hook":         string(cfg.opts.FailedExecHook),
		"filters.cgroup":           cfg.opts.CgroupPath,
		"filters.uids":             fmt.Sprint(len(cfg.opts.UIDs)),
		"redaction.patterns":       fmt.Sprint(len(cfg.redactPatterns)),
		"redaction.enabled":        fmt.Sprint(!cfg.noRedact),
		"exits":                    fmt.Sprint(cfg.exits),
		"exec_context":             fmt.Sprint(len(cfg.execContext)),
		"lineage.max_ancestors":    fmt.Sprint(cfg.maxAncestors),
		"executable_file":          fmt.Sprint(cfg.executableFile),
		"executable.hash.enabled":  fmt.Sprint(!cfg.noHash),
		"executable.hash.max_size": fmt.Sprint(cfg.hashMaxSize),
		"executable.hash.max_wait": cfg.hashMaxWait.String(),
		"failed_execs":             string(cfg.opts.FailedExecs),
	}
	for _, s := range execsnoopreceiver.Settings() {
		for _, m := range mirrored {
			if m.key != s.Key {
				continue
			}
			want := fmt.Sprint(s.Default)
			switch d := s.Default.(type) {
			case time.Duration:
				want = d.String()
			case []string:
				want = fmt.Sprint(len(d))
			case []uint32:
				want = fmt.Sprint(len(d))
			}
			v, ok := got[s.Key]
			if !ok {
				t.Errorf("the test does not read the CLI's default of --%s (%s): add it", m.flag, s.Key)
				continue
			}
			if differs := v != want; differs != (m.why != "") {
				t.Errorf("--%s defaults to %s, the receiver's %s to %s; mirrored's why is %q", m.flag, v, s.Key, want, m.why)
			}
		}
	}
}
