//go:build linux

package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

func spanAttr(s ptrace.Span, key string) any { return collectortest.Attr(s.Attributes(), key) }

// A shell script's process tree arrives as one trace: sh is the root with
// status Error and exit code 3, true and sleep are its children.
func TestProcessTreeAsOneTrace(t *testing.T) {
	bin := collectortest.Binary(t)
	port, out := collectortest.StartSink(t, bin, "traces")
	marker := fmt.Sprintf("trace-%d", time.Now().UnixNano())
	collectortest.Start(t, bin, "traces-source", collectortest.WriteConfig(t, "source", sourceConfig(port, `traces: {roots: ["sh -c *`+marker+`*"]}`+"\n"+identityWait, "", "logs", "traces")))

	// dash runs true and sleep as child processes (`true` alone is a builtin).
	sh := exec.Command("/bin/sh", "-c", "/bin/true; sleep 0.2; exit 3", marker)
	_ = sh.Run()

	var root ptrace.Span
	var children []ptrace.Span
	deadline := time.Now().Add(15 * time.Second)
	for {
		children = nil
		found := false
		for _, s := range collectortest.Spans(out) {
			if spanAttr(s, "process.pid") == int64(sh.Process.Pid) {
				root, found = s, true
			}
		}
		if found {
			for _, s := range collectortest.Spans(out) {
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
	trueSpan, hasTrue := names["true"]
	if !ok || !hasTrue {
		t.Fatalf("children %v, want true and sleep", children)
	}
	// Spans carry the executable's identity as exec records do.
	truePath, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := spanAttr(trueSpan, "execsnoop.executable.hash.sha256"), testenv.FileSHA256(t, truePath); got != want {
		t.Errorf("true's span: sha256 %v (missing %v), want %s", got, spanAttr(trueSpan, "execsnoop.executable.hash.missing"), want)
	}
	if spanAttr(trueSpan, "process.executable.build_id.htlhash") != profilerFileID(t, truePath) {
		t.Errorf("true's span: htlhash %v", spanAttr(trueSpan, "process.executable.build_id.htlhash"))
	}
	if d := sleep.EndTimestamp().AsTime().Sub(sleep.StartTimestamp().AsTime()); d < 200*time.Millisecond {
		t.Errorf("sleep 0.2 lasted %v", d)
	}
	if sleep.Status().Code() == ptrace.StatusCodeError {
		t.Error("sleep exited 0 but has status Error")
	}
	// Spans carry the lineage of their exec as the log records do.
	shPath, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	pids, _ := spanAttr(sleep, "execsnoop.ancestors.pid").([]any)
	if spanAttr(sleep, "execsnoop.parent.source") != "exec" || spanAttr(sleep, "execsnoop.parent.executable.path") != shPath ||
		len(pids) == 0 || pids[0] != int64(sh.Process.Pid) {
		t.Errorf("sleep's span lineage: source %v, parent path %v (want %s), ancestors %v (want %d first)",
			spanAttr(sleep, "execsnoop.parent.source"), spanAttr(sleep, "execsnoop.parent.executable.path"), shPath, pids, sh.Process.Pid)
	}
}
