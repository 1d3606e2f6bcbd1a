package execsnoopreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

// events of a tree: sh (pid 10) runs true (11) and sleep (12), exits 3.
func treeEvents(t0 time.Time) []bpf.Event {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	return []bpf.Event{
		{Kind: bpf.KindFork, PID: 10, PPID: 1, StartTime: at(0), Time: at(0)},
		{Kind: bpf.KindExec, PID: 10, PPID: 1, Comm: "sh", Filename: "/bin/sh", Args: []string{"sh", "-c", "..."}, Time: at(1)},
		{Kind: bpf.KindFork, PID: 11, PPID: 10, Comm: "sh", StartTime: at(2), Time: at(2)},
		{Kind: bpf.KindExec, PID: 11, PPID: 10, Comm: "true", Filename: "/bin/true", Args: []string{"/bin/true"}, Time: at(3)},
		{Kind: bpf.KindExit, PID: 11, PPID: 10, Comm: "true", StartTime: at(2), Time: at(4)},
		{Kind: bpf.KindExec, PID: 10, PPID: 1, Comm: "sh", Filename: "/nope", Args: []string{"/nope"}, Retval: -2, Time: at(5)},
		{Kind: bpf.KindFork, PID: 12, PPID: 10, Comm: "sh", StartTime: at(6), Time: at(6)},
		{Kind: bpf.KindExec, PID: 12, PPID: 10, Comm: "sleep", Filename: "/bin/sleep", Args: []string{"sleep", "0.2"}, Time: at(7)},
		{Kind: bpf.KindExit, PID: 12, PPID: 10, Comm: "sleep", StartTime: at(6), Time: at(206)},
		{Kind: bpf.KindExit, PID: 10, PPID: 1, Comm: "sh", ExitCode: 3 << 8, StartTime: at(0), Time: at(208)},
	}
}

func runTracker(tr *spanTracker, evs []bpf.Event) map[string]ptrace.Span {
	ended := map[string]ptrace.Span{}
	for i := range evs {
		tr.handle(&evs[i], func(s ptrace.Span, _ *exehash.Result) { ended[s.Name()] = s })
	}
	return ended
}

func TestProcessTreeIsOneTrace(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tr := newSpanTracker(&procattr.Mapper{}, nil, &TracesConfig{Roots: []string{"sh"}, MaxOpenSpans: 100})
	spans := runTracker(tr, treeEvents(t0))
	require.Len(t, spans, 3)
	sh, tru, sleep := spans["sh"], spans["true"], spans["sleep"]

	assert.True(t, sh.ParentSpanID().IsEmpty())
	assert.Equal(t, sh.TraceID(), tru.TraceID())
	assert.Equal(t, sh.TraceID(), sleep.TraceID())
	assert.Equal(t, sh.SpanID(), tru.ParentSpanID())
	assert.Equal(t, sh.SpanID(), sleep.ParentSpanID())
	assert.Equal(t, ptrace.StatusCodeError, sh.Status().Code())
	assert.Equal(t, ptrace.StatusCodeUnset, sleep.Status().Code())
	code, _ := sh.Attributes().Get(procattr.ProcessExitCode)
	assert.Equal(t, int64(3), code.Int())
	errType, _ := sh.Attributes().Get(procattr.ErrorType)
	assert.Equal(t, "3", errType.Str())
	assert.Equal(t, ptrace.SpanKindInternal, sh.Kind())
	assert.Equal(t, t0, sh.StartTimestamp().AsTime(), "a span starts at the fork")
	assert.Equal(t, 200*time.Millisecond, sleep.EndTimestamp().AsTime().Sub(sleep.StartTimestamp().AsTime()))
	assert.False(t, sleep.StartTimestamp().AsTime().Before(sh.StartTimestamp().AsTime()))
	assert.False(t, sleep.EndTimestamp().AsTime().After(sh.EndTimestamp().AsTime()))

	// sh's exec and its failed exec are span events.
	require.Equal(t, 2, sh.Events().Len())
	assert.Equal(t, procattr.SpanEventExec, sh.Events().At(0).Name())
	assert.Equal(t, procattr.SpanEventExecFailed, sh.Events().At(1).Name())
	failedType, _ := sh.Events().At(1).Attributes().Get(procattr.ErrorType)
	assert.Equal(t, "ENOENT", failedType.Str())
	assert.Empty(t, tr.open)
	assert.Empty(t, tr.forks)
}

func TestNonRootsStartNoTrace(t *testing.T) {
	tr := newSpanTracker(&procattr.Mapper{}, nil, &TracesConfig{Roots: []string{"make", "bash ci.sh*"}, MaxOpenSpans: 100})
	assert.Empty(t, runTracker(tr, treeEvents(time.Now())))
	assert.True(t, tr.isRoot(&bpf.Event{Filename: "/usr/bin/bash", Args: []string{"bash", "ci.sh", "--fast"}}))
	assert.True(t, tr.isRoot(&bpf.Event{Filename: "/usr/bin/make", Args: []string{"make", "-j4"}}))
	assert.False(t, tr.isRoot(&bpf.Event{Filename: "/usr/bin/bash", Args: []string{"bash", "other.sh"}}))
}

func TestNestedTreeKeepsParentage(t *testing.T) {
	now := time.Now()
	evs := []bpf.Event{
		{Kind: bpf.KindExec, PID: 20, PPID: 1, Filename: "/usr/bin/make", Args: []string{"make"}, Time: now},
		{Kind: bpf.KindFork, PID: 21, PPID: 20, StartTime: now, Time: now},
		{Kind: bpf.KindExec, PID: 21, PPID: 20, Filename: "/bin/sh", Args: []string{"sh", "-c", "cc x.c"}, Time: now},
		{Kind: bpf.KindFork, PID: 22, PPID: 21, StartTime: now, Time: now},
		{Kind: bpf.KindExec, PID: 22, PPID: 21, Filename: "/usr/bin/cc", Args: []string{"cc", "x.c"}, Time: now},
		{Kind: bpf.KindExit, PID: 22, PPID: 21, Time: now},
		{Kind: bpf.KindExit, PID: 21, PPID: 20, Time: now},
		{Kind: bpf.KindExit, PID: 20, PPID: 1, Time: now},
	}
	tr := newSpanTracker(&procattr.Mapper{}, nil, &TracesConfig{Roots: []string{"make"}, MaxOpenSpans: 100})
	spans := runTracker(tr, evs)
	require.Len(t, spans, 3)
	assert.Equal(t, spans["make"].SpanID(), spans["sh"].ParentSpanID())
	assert.Equal(t, spans["sh"].SpanID(), spans["cc"].ParentSpanID())
	assert.Equal(t, spans["make"].TraceID(), spans["cc"].TraceID())
}

func TestOpenSpanCap(t *testing.T) {
	tr := newSpanTracker(&procattr.Mapper{}, nil, &TracesConfig{Roots: []string{"*"}, MaxOpenSpans: 3})
	for pid := uint32(1); pid <= 5; pid++ {
		tr.handle(&bpf.Event{Kind: bpf.KindExec, PID: pid, Filename: "/bin/sleep", Time: time.Now()}, func(ptrace.Span, *exehash.Result) {})
	}
	assert.Len(t, tr.open, 3)
	assert.Equal(t, int64(2), tr.dropped)
	assert.NotContains(t, tr.open, uint32(1), "the oldest goes first")
	assert.Contains(t, tr.open, uint32(5))

	var ended []ptrace.Span
	tr.endAll(time.Now(), func(s ptrace.Span, _ *exehash.Result) { ended = append(ended, s) })
	require.Len(t, ended, 3)
	flag, _ := ended[0].Attributes().Get(procattr.SpanUnfinished)
	assert.True(t, flag.Bool())
	assert.Empty(t, tr.open)
}
