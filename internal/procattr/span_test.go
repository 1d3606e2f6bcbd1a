package procattr

import (
	"testing"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

func TestSpanExit(t *testing.T) {
	ev := &bpf.Event{Kind: bpf.KindExit, PID: 10, Comm: "make", ExitCode: 2 << 8, StartTime: start,
		Time: start.Add(time.Second)}
	got := MapSink{}
	failed, message := (&Mapper{}).SpanExit(ev, got)
	if !failed || message != "make exited with status 2 after 1.00s" || got[ErrorType] != "2" || got[ProcessExitCode] != int64(2) {
		t.Errorf("failed %v message %q attributes %v", failed, message, got)
	}
	ev.ExitCode = 0
	got = MapSink{}
	if failed, message := (&Mapper{}).SpanExit(ev, got); failed || message != "" || got[ErrorType] != nil {
		t.Errorf("a clean exit: failed %v message %q attributes %v", failed, message, got)
	}
}

func TestSpanName(t *testing.T) {
	exec := &bpf.Event{Kind: bpf.KindExec, Filename: "/usr/bin/m\xffake", Comm: "sh"}
	if got := SpanName(exec); got != `m\xffake` {
		t.Errorf("exec span name %q", got)
	}
	fork := &bpf.Event{Kind: bpf.KindFork, Comm: "bash"}
	if got := SpanName(fork); got != "bash" {
		t.Errorf("fork span name %q", got)
	}
}
