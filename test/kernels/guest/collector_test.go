//go:build linux

package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The file exporter's OTLP/JSON: the marker counts only as an element of
// process.command_args, and a half-written last line is not an error.
func TestHasExecRecord(t *testing.T) {
	const marker = "ktest-image-collector-1"
	record := func(key, arg string) string {
		return `{"resourceLogs":[{"resource":{},"scopeLogs":[{"scope":{},"logRecords":[{"body":{"stringValue":"` + marker +
			`"},"attributes":[{"key":"process.pid","value":{"intValue":"7"}},{"key":"` + key +
			`","value":{"arrayValue":{"values":[{"stringValue":"/bin/true"},{"stringValue":"` + arg + `"}]}}}]}]}]}]}` + "\n"
	}
	for _, c := range []struct {
		name, data string
		want       bool
	}{
		{"record", record("process.command_args", marker), true},
		{"after a half-written line", record("process.command_args", "other") + `{"resourceLogs":[` + "\n" + record("process.command_args", marker), true},
		{"half-written", record("process.command_args", marker)[:60], false},
		{"other attribute", record("execsnoop.parent.command_args", marker), false},
		{"prefix only", record("process.command_args", marker+"0"), false},
		{"body only", record("process.command_args", "other"), false},
	} {
		path := filepath.Join(t.TempDir(), "logs.json")
		if err := os.WriteFile(path, []byte(c.data), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := hasExecRecord(path, marker); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if hasExecRecord(filepath.Join(t.TempDir(), "none.json"), marker) {
		t.Error("a missing file has a record")
	}
}

func TestTailLines(t *testing.T) {
	if got, want := tailLines("a\nb\nc\n", 2), "b / c"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if got := tailLines("", 2); got != "" {
		t.Errorf("%q", got)
	}
}
