//go:build linux && (amd64 || arm64)

package execsnoopreceiver

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadatatest"
)

// startBoth starts one receiver in a logs and a traces pipeline.
func startBoth(t *testing.T, cfg *Config) (*consumertest.LogsSink, *consumertest.TracesSink, *componenttest.Telemetry) {
	t.Helper()
	testenv.RequireRoot(t)
	require.NoError(t, cfg.Validate())
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	logs, traces := new(consumertest.LogsSink), new(consumertest.TracesSink)
	set := metadatatest.NewSettings(tt)
	lr, err := NewFactory().CreateLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)
	tr, err := NewFactory().CreateTraces(context.Background(), set, cfg, traces)
	require.NoError(t, err)
	require.NoError(t, lr.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, tr.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, tr.Shutdown(context.Background()))
		require.NoError(t, lr.Shutdown(context.Background()))
	})
	return logs, traces, tt
}

// spanOf waits for the ended span of a pid.
func spanOf(t *testing.T, sink *consumertest.TracesSink, pid int) ptrace.Span {
	t.Helper()
	found := ptrace.NewSpan()
	require.Eventually(t, func() bool {
		for _, td := range sink.AllTraces() {
			for _, rs := range td.ResourceSpans().All() {
				for _, ss := range rs.ScopeSpans().All() {
					for _, s := range ss.Spans().All() {
						if v, ok := s.Attributes().Get(procattr.ProcessPID); ok && v.Int() == int64(pid) {
							s.CopyTo(found)
							return true
						}
					}
				}
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "no span for pid %d", pid)
	return found
}

// pidOf finds the pid of the exec record whose arguments hold marker.
func pidOf(t *testing.T, sink *consumertest.LogsSink, marker string) int {
	t.Helper()
	pid := 0
	require.Eventually(t, func() bool {
		for _, lr := range allRecords(sink) {
			if lr.EventName() != procattr.EventExec {
				continue
			}
			args, _ := lr.Attributes().Get(procattr.ProcessCommandArgs)
			for _, a := range args.Slice().AsRaw() {
				if a == marker {
					pid = int(attr(lr, procattr.ProcessPID).(int64))
					return true
				}
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "no exec of %s", marker)
	return pid
}

// A CI-like script run with TRACEPARENT (after 20 KiB of other variables)
// joins that trace below the given span, its children follow it, a child
// handed another TRACEPARENT moves to that trace, and every log record
// carries its process's span's ids.
func TestScriptJoinsTheCallersTrace(t *testing.T) {
	cfg := testConfig()
	cfg.Traces.Roots = []string{"no-root-matches-this"}
	logs, traces, _ := startBoth(t, cfg)

	mark := fmt.Sprintf("ci-%d", time.Now().UnixNano())
	script := fmt.Sprintf(`/bin/true child-%[1]s; TRACEPARENT=%[2]s /bin/sh -c '/bin/true grandchild-%[1]s' step-%[1]s; exit 0`, mark, stepTraceparent)
	sh := exec.Command("/bin/sh", "-c", script, "script-"+mark)
	sh.Env = append(testenv.FillerEnv("CI_FILLER_", 20*1024), "PATH=/usr/bin:/bin", "TRACEPARENT="+ciTraceparent, "TRACESTATE=ci=job-42")
	require.NoError(t, sh.Run())

	root := spanOf(t, traces, sh.Process.Pid)
	child := spanOf(t, traces, pidOf(t, logs, "child-"+mark))
	step := spanOf(t, traces, pidOf(t, logs, "step-"+mark))
	grandchild := spanOf(t, traces, pidOf(t, logs, "grandchild-"+mark))

	ciTrace, ciSpan := ids(ciTraceparent)
	stepTrace, stepSpan := ids(stepTraceparent)
	assert.Equal(t, ciTrace, root.TraceID(), "the script's span is in the caller's trace")
	assert.Equal(t, ciSpan, root.ParentSpanID(), "below the caller's span")
	assert.Equal(t, "ci=job-42", root.TraceState().AsRaw())
	assert.Equal(t, ciTrace, child.TraceID())
	assert.Equal(t, root.SpanID(), child.ParentSpanID())
	assert.Equal(t, stepTrace, step.TraceID(), "another TRACEPARENT re-parents")
	assert.Equal(t, stepSpan, step.ParentSpanID())
	assert.Equal(t, stepTrace, grandchild.TraceID())
	assert.Equal(t, step.SpanID(), grandchild.ParentSpanID())

	// Every exec and exit record of these processes carries its span's ids.
	spans := map[int64]ptrace.Span{}
	for _, s := range []ptrace.Span{root, child, step, grandchild} {
		pid, _ := s.Attributes().Get(procattr.ProcessPID)
		spans[pid.Int()] = s
	}
	linked := 0
	require.Eventually(t, func() bool {
		linked = 0
		for _, lr := range allRecords(logs) {
			pid, _ := attr(lr, procattr.ProcessPID).(int64)
			s, ok := spans[pid]
			if !ok {
				continue
			}
			assert.Equal(t, s.TraceID(), lr.TraceID(), "%s record of pid %d", lr.EventName(), pid)
			assert.Equal(t, s.SpanID(), lr.SpanID(), "%s record of pid %d", lr.EventName(), pid)
			linked++
		}
		return linked >= 8 // an exec and an exit record per process
	}, 10*time.Second, 20*time.Millisecond)
}

// An invalid TRACEPARENT leaves an ordinary trace and is counted; names
// that only resemble it are not taken.
func TestInvalidOrLookalikeTraceparent(t *testing.T) {
	mark := fmt.Sprintf("tp-%d", time.Now().UnixNano())
	cfg := testConfig()
	cfg.Traces.Roots = []string{"sh -c * " + mark + "*"}
	_, traces, tt := startBoth(t, cfg)
	ciTrace, _ := ids(ciTraceparent)

	for i, env := range [][]string{
		{"TRACEPARENT=00-" + strings.Repeat("0", 32) + "-00f067aa0ba902b7-01"},
		{"TRACEPARENT_X=" + ciTraceparent, "traceparent=" + ciTraceparent, "XTRACEPARENT=" + ciTraceparent},
	} {
		sh := exec.Command("/bin/sh", "-c", "/bin/true", fmt.Sprintf("%s-%d", mark, i))
		sh.Env = env
		require.NoError(t, sh.Run())
		root := spanOf(t, traces, sh.Process.Pid)
		assert.True(t, root.ParentSpanID().IsEmpty(), "env %q: an ordinary root", env)
		assert.NotEqual(t, ciTrace, root.TraceID(), "env %q", env)
	}
	// Counted per exec that carried it: sh and the true it runs (one exec
	// when sh execs true in place).
	require.Eventually(t, func() bool {
		n := counterValue(tt, "otelcol_execsnoop.receiver.trace_context.invalid")
		return n >= 1 && n <= 2
	}, 5*time.Second, 20*time.Millisecond, "the invalid TRACEPARENT is counted")
}

// Without a traces pipeline the kernel does not look for trace context.
func TestLogsOnlyDoesNotLookForTraceContext(t *testing.T) {
	cfg := testConfig()
	assert.False(t, cfg.probeOptions(false).TraceContext)
	assert.True(t, cfg.probeOptions(true).TraceContext)
	cfg.Traces.ContextFromEnv = false
	assert.False(t, cfg.probeOptions(true).TraceContext)
}
