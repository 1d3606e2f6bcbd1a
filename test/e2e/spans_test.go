//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

const tracesSinkConfig = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
exporters:
  file:
    path: %s
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
`

const tracesSourceConfig = `
receivers:
  execsnoop:
    traces:
      roots: ["sh -c *%s*"]
processors:
  batch:
    timeout: 200ms
exporters:
  otlp_grpc:
    endpoint: 127.0.0.1:%d
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [execsnoop]
      processors: [batch]
      exporters: [otlp_grpc]
    traces:
      receivers: [execsnoop]
      processors: [batch]
      exporters: [otlp_grpc]
`

// spans parses the file exporter's traces output.
func spans(t *testing.T, path string) []ptrace.Span {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []ptrace.Span
	var um ptrace.JSONUnmarshaler
	for line := range strings.Lines(string(raw)) {
		traces, err := um.UnmarshalTraces([]byte(line))
		if err != nil {
			continue
		}
		for _, rs := range traces.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

func spanAttr(s ptrace.Span, key string) any {
	v, ok := s.Attributes().Get(key)
	if !ok {
		return nil
	}
	return v.AsRaw()
}

// A shell script's process tree arrives as one trace: sh is the root with
// status Error and exit code 3, true and sleep are its children.
func TestProcessTreeAsOneTrace(t *testing.T) {
	bin := collectorBin(t)
	port := freePort(t)
	out := filepath.Join(t.TempDir(), "traces.json")
	startCollector(t, bin, "traces-sink", writeConfig(t, "sink", fmt.Sprintf(tracesSinkConfig, port, out)))
	marker := fmt.Sprintf("trace-%d", time.Now().UnixNano())
	startCollector(t, bin, "traces-source", writeConfig(t, "source", fmt.Sprintf(tracesSourceConfig, marker, port)))

	// dash runs true and sleep as child processes (`true` alone is a builtin).
	sh := exec.Command("/bin/sh", "-c", "/bin/true; sleep 0.2; exit 3", marker)
	_ = sh.Run()

	var root ptrace.Span
	var children []ptrace.Span
	deadline := time.Now().Add(15 * time.Second)
	for {
		children = nil
		found := false
		for _, s := range spans(t, out) {
			if spanAttr(s, "process.pid") == int64(sh.Process.Pid) {
				root, found = s, true
			}
		}
		if found {
			for _, s := range spans(t, out) {
				if s.TraceID() == root.TraceID() && s.SpanID() != root.SpanID() {
					children = append(children, s)
				}
			}
		}
		if found && len(children) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trace did not arrive: root found %v, %d children", found, len(children))
		}
		time.Sleep(100 * time.Millisecond)
	}

	if root.Name() != "sh" || !root.ParentSpanID().IsEmpty() || root.Kind() != ptrace.SpanKindInternal {
		t.Errorf("root span %q parent %v kind %v", root.Name(), root.ParentSpanID(), root.Kind())
	}
	if root.Status().Code() != ptrace.StatusCodeError || spanAttr(root, "process.exit.code") != int64(3) {
		t.Errorf("root status %v exit code %v", root.Status().Code(), spanAttr(root, "process.exit.code"))
	}
	names := map[string]ptrace.Span{}
	for _, c := range children {
		names[c.Name()] = c
		if c.ParentSpanID() != root.SpanID() {
			t.Errorf("%s's parent span is %v, want sh's %v", c.Name(), c.ParentSpanID(), root.SpanID())
		}
		if c.StartTimestamp() < root.StartTimestamp() || c.EndTimestamp() > root.EndTimestamp() {
			t.Errorf("%s [%v, %v] is not within sh [%v, %v]", c.Name(), c.StartTimestamp(), c.EndTimestamp(),
				root.StartTimestamp(), root.EndTimestamp())
		}
	}
	sleep, ok := names["sleep"]
	if _, hasTrue := names["true"]; !ok || !hasTrue {
		t.Fatalf("children %v, want true and sleep", children)
	}
	if d := sleep.EndTimestamp().AsTime().Sub(sleep.StartTimestamp().AsTime()); d < 200*time.Millisecond {
		t.Errorf("sleep 0.2 lasted %v", d)
	}
	if sleep.Status().Code() == ptrace.StatusCodeError {
		t.Error("sleep exited 0 but has status Error")
	}
}
