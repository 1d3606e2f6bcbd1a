package execsnoopreceiver

import (
	"testing"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

var benchExec = bpf.Event{Kind: bpf.KindExec, PID: 4242, TID: 4242, PPID: 1, UID: 1000, GID: 1000, Comm: "git",
	Filename: "/usr/bin/git", Args: []string{"/usr/bin/git", "-C", "/src/project", "status", "--porcelain"},
	Argc: 5, Syscall: bpf.SyscallExecve, LoginUID: 1000, Time: time.Now()}

// One event to one log record: the conversion alone.
func BenchmarkToLogRecord(b *testing.B) {
	batch := newLogBatch(&procattr.Mapper{}, nil, "bench")
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		batch.add(&benchExec, now, spanLink{})
		if batch.count == defaultBatchSize {
			batch.take()
		}
	}
}

// The receiver's per-event path after decoding: comm filters, cgroup path
// and container id lookup in a real (fake-rooted) hierarchy, conversion,
// batching; one batch handed over every defaultBatchSize events.
func BenchmarkReceiverPerEvent(b *testing.B) {
	mapper, hostCg, _ := fakeHierarchy(&testing.T{})
	ev := benchExec
	ev.CgroupID = hostCg
	cfg := createDefaultConfig()
	cfg.Filters.ExcludeComms = []string{"kube*"}
	batch := newLogBatch(mapper, nil, "bench")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if cfg.Filters.keepComm(ev.Comm) {
			batch.add(&ev, now, spanLink{})
		}
		if batch.count == defaultBatchSize {
			batch.take()
		}
	}
}
