package execsnoopreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

const (
	ciTraceparent   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	stepTraceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
)

// A CI step (sh, pid 10, with the job's TRACEPARENT) runs cc and a child
// handed another TRACEPARENT (otel-cli exec), which runs ld.
func ciEvents(now time.Time) []bpf.Event {
	return []bpf.Event{
		{Kind: bpf.KindExec, PID: 10, PPID: 1, Filename: "/bin/sh", Args: []string{"sh", "step.sh"}, Time: now,
			TraceParent: ciTraceparent, TraceState: "ci=1"},
		{Kind: bpf.KindFork, PID: 11, PPID: 10, StartTime: now, Time: now},
		{Kind: bpf.KindExec, PID: 11, PPID: 10, Filename: "/usr/bin/cc", Args: []string{"cc"}, Time: now, TraceParent: ciTraceparent},
		{Kind: bpf.KindExit, PID: 11, PPID: 10, Time: now},
		{Kind: bpf.KindFork, PID: 12, PPID: 10, StartTime: now, Time: now},
		{Kind: bpf.KindExec, PID: 12, PPID: 10, Filename: "/usr/bin/step", Args: []string{"step"}, Time: now,
			TraceParent: stepTraceparent},
		{Kind: bpf.KindFork, PID: 13, PPID: 12, StartTime: now, Time: now},
		{Kind: bpf.KindExec, PID: 13, PPID: 12, Filename: "/usr/bin/ld", Args: []string{"ld"}, Time: now, TraceParent: stepTraceparent},
		{Kind: bpf.KindExit, PID: 13, PPID: 12, Time: now},
		{Kind: bpf.KindExit, PID: 12, PPID: 10, Time: now},
		{Kind: bpf.KindExit, PID: 10, PPID: 1, Time: now},
	}
}

func ids(tp string) (pcommon.TraceID, pcommon.SpanID) {
	var t pcommon.TraceID
	var s pcommon.SpanID
	for i := range t {
		t[i] = hexByte(tp[3+2*i:])
	}
	for i := range s {
		s[i] = hexByte(tp[36+2*i:])
	}
	return t, s
}

func hexByte(s string) byte {
	v := func(c byte) byte {
		if c >= 'a' {
			return c - 'a' + 10
		}
		return c - '0'
	}
	return v(s[0])<<4 | v(s[1])
}

func TestTraceparentParentsTheTree(t *testing.T) {
	// No root pattern matches: the trace context alone starts the trace.
	tr := newSpanTracker(&procattr.Mapper{}, nil, &TracesConfig{Roots: []string{"nothing-matches"}, MaxOpenSpans: 100})
	spans := runTracker(tr, ciEvents(time.Now()))
	require.Len(t, spans, 4)
	ciTrace, ciSpan := ids(ciTraceparent)
	stepTrace, stepSpan := ids(stepTraceparent)

	assert.Equal(t, ciTrace, spans["sh"].TraceID())
	assert.Equal(t, ciSpan, spans["sh"].ParentSpanID())
	assert.Equal(t, "ci=1", spans["sh"].TraceState().AsRaw())
	assert.Equal(t, uint32(1), spans["sh"].Flags())
	assert.Equal(t, ciTrace, spans["cc"].TraceID())
	assert.Equal(t, spans["sh"].SpanID(), spans["cc"].ParentSpanID(), "a child with the same TRACEPARENT stays below its parent")
	assert.Equal(t, "ci=1", spans["cc"].TraceState().AsRaw())

	assert.Equal(t, stepTrace, spans["step"].TraceID(), "a different TRACEPARENT re-parents")
	assert.Equal(t, stepSpan, spans["step"].ParentSpanID())
	assert.Equal(t, "", spans["step"].TraceState().AsRaw())
	assert.Equal(t, stepTrace, spans["ld"].TraceID())
	assert.Equal(t, spans["step"].SpanID(), spans["ld"].ParentSpanID())
	assert.Zero(t, tr.invalidContext)
}

func TestInvalidTraceparentIsCountedAndIgnored(t *testing.T) {
	tr := newSpanTracker(&procattr.Mapper{}, nil, &TracesConfig{Roots: []string{"*"}, MaxOpenSpans: 100})
	evs := ciEvents(time.Now())
	for i := range evs {
		if evs[i].TraceParent != "" {
			evs[i].TraceParent = "00-zz-" + evs[i].TraceParent[6:]
		}
	}
	spans := runTracker(tr, evs)
	require.Len(t, spans, 4)
	assert.True(t, spans["sh"].ParentSpanID().IsEmpty(), "an ordinary root")
	assert.Equal(t, spans["sh"].TraceID(), spans["ld"].TraceID(), "one ordinary trace")
	assert.Equal(t, spans["step"].SpanID(), spans["ld"].ParentSpanID())
	assert.Equal(t, int64(4), tr.invalidContext)
}

// A process whose span already exists (forked, or exec'ing again) moves
// to the trace of a new TRACEPARENT; the same one changes nothing.
func TestReexecWithAnotherTraceparent(t *testing.T) {
	tr := newSpanTracker(&procattr.Mapper{}, nil, &TracesConfig{Roots: []string{"*"}, MaxOpenSpans: 100})
	now := time.Now()
	ev := bpf.Event{Kind: bpf.KindExec, PID: 30, PPID: 1, Filename: "/bin/sh", Time: now}
	tr.handle(&ev, nil)
	traceBefore := tr.open[30].span.TraceID()
	ev.Filename, ev.TraceParent = "/usr/bin/otel-cli", stepTraceparent
	traceID, spanID, ok := tr.handle(&ev, nil)
	stepTrace, stepSpan := ids(stepTraceparent)
	require.True(t, ok)
	assert.NotEqual(t, traceBefore, traceID)
	assert.Equal(t, stepTrace, traceID)
	assert.Equal(t, tr.open[30].span.SpanID(), spanID)
	assert.Equal(t, stepSpan, tr.open[30].span.ParentSpanID())
}
