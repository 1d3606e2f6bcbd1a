//go:build linux

// Package e2e runs the built collector end to end: otelcol-execsnoop with
// the execsnoop receiver exports over OTLP to a second otelcol-execsnoop
// (otlp receiver -> file exporter), and the tests read what arrived.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
)

// sourceConfig is the collector under test: execsnoop (receiver: its
// settings as YAML lines under it) -> [resource setting service.name, when
// service is not ""] -> batch -> otlp_grpc to the sink's port, with one
// pipeline per signal.
func sourceConfig(port int, receiver, service string, signals ...string) string {
	var b strings.Builder
	b.WriteString("receivers:\n  execsnoop:\n")
	for line := range strings.Lines(receiver) {
		b.WriteString("    " + line)
	}
	b.WriteString("\nprocessors:\n  batch:\n    timeout: 200ms\n")
	chain := "[batch]"
	if service != "" {
		fmt.Fprintf(&b, "  resource:\n    attributes:\n      - {key: service.name, value: %s, action: upsert}\n", service)
		chain = "[resource, batch]"
	}
	fmt.Fprintf(&b, "exporters:\n  otlp_grpc:\n    endpoint: 127.0.0.1:%d\n    tls:\n      insecure: true\n", port)
	b.WriteString("service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n")
	for _, signal := range signals {
		fmt.Fprintf(&b, "    %s:\n      receivers: [execsnoop]\n      processors: %s\n      exporters: [otlp_grpc]\n", signal, chain)
	}
	return b.String()
}

func attr(lr plog.LogRecord, key string) any { return collectortest.Attr(lr.Attributes(), key) }

// waitRecord polls the sink's file for a record that matches.
func waitRecord(t *testing.T, path, what string, match func(plog.LogRecord) bool) plog.LogRecord {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		records := collectortest.LogRecords(path)
		if i := slices.IndexFunc(records, match); i >= 0 {
			return records[i]
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %s record reached the sink", what)
	return plog.LogRecord{}
}

func hasArg(lr plog.LogRecord, arg string) bool {
	args, _ := attr(lr, "process.command_args").([]any)
	return slices.Contains(args, any(arg))
}

func TestExecAndExitReachTheSink(t *testing.T) {
	bin := collectortest.Binary(t)
	port, out := collectortest.StartSink(t, bin, "logs")
	collectortest.Start(t, bin, "source", collectortest.WriteConfig(t, "source", sourceConfig(port, "", "", "logs")))

	marker := fmt.Sprintf("marker-%d", time.Now().UnixNano())
	// $0 of the shell is the marker, so the record can be found.
	sh := exec.Command("/bin/sh", "-c", "exit 3", marker)
	_ = sh.Run()
	awkward := []string{"/bin/echo", marker, "with space", "", "line\nbreak", "ünï"}
	echo := exec.Command(awkward[0], awkward[1:]...)
	echo.Stdout = nil
	if err := echo.Run(); err != nil {
		t.Fatal(err)
	}
	missing := "/nonexistent/" + marker
	_ = exec.Command(missing, "arg").Run()

	ex := waitRecord(t, out, "sh exec", func(lr plog.LogRecord) bool {
		return lr.EventName() == "process.exec" && hasArg(lr, marker) && attr(lr, "execsnoop.exec.filename") == "/bin/sh"
	})
	// The path is the file the kernel runs: /bin/sh's target.
	shPath, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if wd, err = filepath.EvalSymlinks(wd); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"process.pid":                  int64(sh.Process.Pid),
		"process.parent_pid":           int64(os.Getpid()),
		"process.executable.path":      shPath,
		"process.executable.name":      filepath.Base(shPath),
		"process.working_directory":    wd,
		"execsnoop.executable.memfd":   false,
		"execsnoop.executable.deleted": false,
		"process.command":              "/bin/sh",
		"process.command_args":         []any{"/bin/sh", "-c", "exit 3", marker},
		"process.args_count":           int64(4),
		"process.user.id":              int64(0),
		"thread.name":                  "sh",
		"execsnoop.exec.retval":        int64(0),
		"execsnoop.exec.syscall":       "execve",
	} {
		if got := attr(ex, key); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("exec %s = %#v, want %#v", key, got, want)
		}
	}
	if ex.SeverityText() != "INFO" || !strings.Contains(ex.Body().Str(), "'exit 3' "+marker) {
		t.Errorf("exec severity %s body %q", ex.SeverityText(), ex.Body().Str())
	}

	exit := waitRecord(t, out, "sh exit", func(lr plog.LogRecord) bool {
		return lr.EventName() == "process.exit" && attr(lr, "process.pid") == int64(sh.Process.Pid)
	})
	if attr(exit, "process.exit.code") != int64(3) || attr(exit, "thread.name") != "sh" {
		t.Errorf("exit record attributes %v", exit.Attributes().AsRaw())
	}

	echoRec := waitRecord(t, out, "echo exec", func(lr plog.LogRecord) bool {
		return lr.EventName() == "process.exec" && attr(lr, "process.pid") == int64(echo.Process.Pid)
	})
	var want []any
	for _, a := range awkward {
		want = append(want, a)
	}
	if got := attr(echoRec, "process.command_args"); !slices.Equal(got.([]any), want) {
		t.Errorf("echo argv %q, want %q", got, want)
	}

	failed := waitRecord(t, out, "failed exec", func(lr plog.LogRecord) bool {
		return attr(lr, "execsnoop.exec.filename") == missing
	})
	// A failed exec ran nothing.
	if _, ok := failed.Attributes().Get("process.executable.path"); ok {
		t.Errorf("failed exec has process.executable.path: %v", failed.Attributes().AsRaw())
	}
	if attr(failed, "error.type") != "ENOENT" || attr(failed, "execsnoop.exec.retval") != int64(-2) || failed.SeverityText() != "WARN" {
		t.Errorf("failed exec attributes %v severity %s", failed.Attributes().AsRaw(), failed.SeverityText())
	}
}

// Secrets in argv never reach the sink in clear (redaction is on by default).
func TestSecretsAreRedacted(t *testing.T) {
	bin := collectortest.Binary(t)
	port, out := collectortest.StartSink(t, bin, "logs")
	collectortest.Start(t, bin, "source", collectortest.WriteConfig(t, "source", sourceConfig(port, "", "", "logs")))

	marker := fmt.Sprintf("marker-%d", time.Now().UnixNano())
	cmd := exec.Command("/bin/echo", marker, "--password=hunter2", "https://u:s3cr3t@host", "--token", "tok3n")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	rec := waitRecord(t, out, "redacted exec", func(lr plog.LogRecord) bool {
		return attr(lr, "process.pid") == int64(cmd.Process.Pid)
	})
	want := []any{"/bin/echo", marker, "--password=****", "https://u:****@host", "--token", "****"}
	if got := attr(rec, "process.command_args"); !slices.Equal(got.([]any), want) || attr(rec, "execsnoop.args.redacted") != true {
		t.Errorf("args %q redacted=%v, want %q", got, attr(rec, "execsnoop.args.redacted"), want)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "s3cr3t", "tok3n"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("%q reached the sink in clear", secret)
		}
	}
}
