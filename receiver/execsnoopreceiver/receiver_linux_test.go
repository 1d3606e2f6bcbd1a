//go:build linux && (amd64 || arm64)

package execsnoopreceiver

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelexecsnoop/execsnoop/internal/cgroup"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadatatest"
)

// testConfig sees the test's own children, which exclude_self would drop.
func testConfig() *Config {
	cfg := createDefaultConfig()
	cfg.Filters.ExcludeSelf = false
	return cfg
}

func startReceiver(t *testing.T, cfg *Config, next consumer.Logs) *componenttest.Telemetry {
	t.Helper()
	testenv.RequireRoot(t)
	require.NoError(t, cfg.Validate())
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	rcv, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tt), cfg, next)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	return tt
}

// findRecord waits for a record with the event name and pid.
func findRecord(t *testing.T, sink *consumertest.LogsSink, event string, pid int) plog.LogRecord {
	t.Helper()
	var found plog.LogRecord
	require.Eventually(t, func() bool {
		i := slices.IndexFunc(allRecords(sink), func(lr plog.LogRecord) bool {
			return lr.EventName() == event && attr(lr, procattr.ProcessPID) == int64(pid)
		})
		if i >= 0 {
			found = allRecords(sink)[i]
		}
		return i >= 0
	}, 5*time.Second, 20*time.Millisecond, "no %s record for pid %d", event, pid)
	return found
}

func attr(lr plog.LogRecord, key string) any {
	v, ok := lr.Attributes().Get(key)
	if !ok {
		return nil
	}
	return v.AsRaw()
}

func TestExecAndExitRecords(t *testing.T) {
	sink := new(consumertest.LogsSink)
	startReceiver(t, testConfig(), sink)

	cmd := exec.Command("/bin/sh", "-c", "exit 3")
	_ = cmd.Run()
	pid := cmd.Process.Pid

	ex := findRecord(t, sink, procattr.EventExec, pid)
	assert.Equal(t, "/bin/sh -c 'exit 3'", ex.Body().Str())
	assert.Equal(t, []any{"/bin/sh", "-c", "exit 3"}, attr(ex, procattr.ProcessCommandArgs))
	// The file the kernel runs: /bin/sh's target; the name passed apart.
	shPath, err := filepath.EvalSymlinks("/bin/sh")
	require.NoError(t, err)
	assert.Equal(t, shPath, attr(ex, procattr.ProcessExecutablePath))
	assert.Equal(t, filepath.Base(shPath), attr(ex, procattr.ProcessExecutableName))
	assert.Equal(t, "/bin/sh", attr(ex, procattr.ExecFilename))
	assert.Equal(t, int64(os.Getpid()), attr(ex, procattr.ProcessParentPID))
	assert.Equal(t, int64(3), attr(ex, procattr.ProcessArgsCount))
	assert.Equal(t, plog.SeverityNumberInfo, ex.SeverityNumber())
	assert.WithinDuration(t, time.Now(), ex.Timestamp().AsTime(), 5*time.Second)
	assert.False(t, ex.ObservedTimestamp().AsTime().Before(ex.Timestamp().AsTime()))

	exit := findRecord(t, sink, procattr.EventExit, pid)
	assert.Equal(t, int64(3), attr(exit, procattr.ProcessExitCode))
	assert.Contains(t, exit.Body().Str(), "sh exited with status 3 after ")

	_ = exec.Command("/nonexistent/receiver-test", "x").Run()
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(allRecords(sink), func(lr plog.LogRecord) bool {
			return attr(lr, procattr.ExecFilename) == "/nonexistent/receiver-test" && attr(lr, procattr.ProcessExecutablePath) == nil &&
				attr(lr, procattr.ErrorType) == "ENOENT" && lr.SeverityNumber() == plog.SeverityNumberWarn
		})
	}, 5*time.Second, 20*time.Millisecond, "no failed exec record")
}

func TestExcludeSelf(t *testing.T) {
	sink := new(consumertest.LogsSink)
	startReceiver(t, createDefaultConfig(), sink) // exclude_self: true
	mine := exec.Command("/bin/true", "excluded")
	require.NoError(t, mine.Run())
	// An exec outside our tree still arrives.
	orphan := exec.Command("/bin/sh", "-c", `/bin/sh -c "sleep 0.2; exec /bin/true outside-tree" & exit 0`)
	require.NoError(t, orphan.Run())
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(allRecords(sink), func(lr plog.LogRecord) bool {
			args, _ := attr(lr, procattr.ProcessCommandArgs).([]any)
			return slices.Contains(args, any("outside-tree"))
		})
	}, 5*time.Second, 20*time.Millisecond)
	for _, lr := range allRecords(sink) {
		assert.NotEqual(t, int64(mine.Process.Pid), attr(lr, procattr.ProcessPID), "the receiver's own child was reported")
	}
}

func allRecords(sink *consumertest.LogsSink) []plog.LogRecord {
	var out []plog.LogRecord
	for _, logs := range sink.AllLogs() {
		for _, rl := range logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					out = append(out, lr)
				}
			}
		}
	}
	return out
}

func TestBatchLimits(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.Batch.MaxSize = 2
	startReceiver(t, cfg, sink)
	for range 10 {
		require.NoError(t, exec.Command("/bin/true", "batch").Run())
	}
	require.Eventually(t, func() bool { return sink.LogRecordCount() >= 20 }, 5*time.Second, 20*time.Millisecond)
	for _, logs := range sink.AllLogs() {
		assert.LessOrEqual(t, logs.LogRecordCount(), 2)
	}
}

func TestRefusedRecordsAreCounted(t *testing.T) {
	tt := startReceiver(t, testConfig(), consumertest.NewErr(errors.New("memory limit reached")))
	for range 5 {
		require.NoError(t, exec.Command("/bin/true", "refused").Run())
	}
	require.Eventually(t, func() bool {
		return counterValue(tt, "otelcol_execsnoop.receiver.records.refused") >= 5 &&
			counterValue(tt, "otelcol_receiver_refused_log_records") >= 5 &&
			counterValue(tt, "otelcol_execsnoop.receiver.events.read") >= 5
	}, 5*time.Second, 50*time.Millisecond)
}

func counterValue(tt *componenttest.Telemetry, name string) int64 {
	m, err := tt.GetMetric(name)
	if err != nil {
		return 0
	}
	var total int64
	if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, dp := range sum.DataPoints {
			total += dp.Value
		}
	}
	return total
}

// A stalled pipeline stalls the reader, the one-page buffer overflows, and
// the loss shows in the receiver's telemetry once the pipeline moves again.
func TestLostEventsAreCounted(t *testing.T) {
	cfg := testConfig()
	cfg.Buffer.Size = 4096
	cfg.Batch.MaxSize = 1
	release := make(chan struct{})
	stalled, err := consumer.NewLogs(func(context.Context, plog.Logs) error {
		<-release
		return nil
	})
	require.NoError(t, err)
	tt := startReceiver(t, cfg, stalled)
	for range 100 {
		_ = exec.Command("/bin/true", "overflow").Run()
	}
	close(release)
	require.Eventually(t, func() bool {
		return counterValue(tt, "otelcol_execsnoop.receiver.events.lost") > 0
	}, 10*time.Second, 50*time.Millisecond)
}

// A shell started before the receiver is adopted from /proc, and the
// processes it starts afterwards join its trace.
func TestAdoptRunningProcesses(t *testing.T) {
	marker := fmt.Sprintf("adopt-%d", time.Now().UnixNano())
	// The shell starts its child only once the receiver runs: it waits
	// for a line on its stdin, which the test writes after Start.
	sh := exec.Command("/bin/sh", "-c", "read go; /bin/true child", marker)
	goAhead, err := sh.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, sh.Start())

	cfg := testConfig()
	cfg.Traces.Roots = []string{"sh -c *" + marker}
	cfg.Traces.AdoptRunning = true
	traces := new(consumertest.TracesSink)
	testenv.RequireRoot(t)
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tt)
	rcv, err := NewFactory().CreateTraces(context.Background(), set, cfg, traces)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	_, err = io.WriteString(goAhead, "go\n")
	require.NoError(t, err)
	require.NoError(t, sh.Wait())
	// Other traced processes named like the child must not be taken for
	// it (go test runs packages side by side; this happened in CI).
	for range 3 {
		other := exec.Command("/bin/true", "other")
		other.Env = []string{"TRACEPARENT=" + ciTraceparent}
		require.NoError(t, other.Run())
	}

	root, child := ptrace.NewSpan(), ptrace.NewSpan()
	// Generous: on a loaded CI machine the spans come when the processes'
	// exits have been read; a failure says what did arrive.
	deadline := 30 * time.Second
	if !assert.Eventually(t, func() bool {
		for _, td := range traces.AllTraces() {
			for _, rs := range td.ResourceSpans().All() {
				for _, s := range rs.ScopeSpans().At(0).Spans().All() {
					// By pid, not by name: other test packages run their
					// own /bin/true beside this one.
					pid, _ := s.Attributes().Get(procattr.ProcessPID)
					ppid, _ := s.Attributes().Get(procattr.ProcessParentPID)
					switch shell := int64(sh.Process.Pid); {
					case pid.Int() == shell:
						s.CopyTo(root)
					case ppid.Int() == shell && s.Name() == "true":
						s.CopyTo(child)
					}
				}
			}
		}
		return root.Name() != "" && child.Name() != "" && root.SpanID() == child.ParentSpanID()
	}, deadline, 50*time.Millisecond, "the adopted shell's child did not join its trace") {
		for _, td := range traces.AllTraces() {
			for _, rs := range td.ResourceSpans().All() {
				for _, s := range rs.ScopeSpans().At(0).Spans().All() {
					pid, _ := s.Attributes().Get(procattr.ProcessPID)
					ppid, _ := s.Attributes().Get(procattr.ProcessParentPID)
					t.Logf("span %q pid %d ppid %d trace %s span %s parent %s", s.Name(), pid.Int(), ppid.Int(),
						s.TraceID(), s.SpanID(), s.ParentSpanID())
				}
			}
		}
		t.Fatalf("shell pid %d; probe stats %+v", sh.Process.Pid, rcv.(*execsnoopReceiver).probe.Stats())
	}
	adopted, _ := root.Attributes().Get(procattr.SpanAdopted)
	assert.True(t, adopted.Bool())
	assert.Equal(t, root.TraceID(), child.TraceID())
	assert.True(t, root.StartTimestamp() <= child.StartTimestamp())
}

// A process in a real cgroup named like a Docker container's gets that
// container.id on its resource and the cgroup path as an attribute.
func TestContainerIDFromARealCgroup(t *testing.T) {
	testenv.RequireRoot(t)
	root, err := cgroup.V2Root()
	require.NoError(t, err)
	sink := new(consumertest.LogsSink)
	startReceiver(t, testConfig(), sink)
	// The receiver has resolved cgroups already when the container appears,
	// as on a busy host: its first exec must be attributed all the same.
	before := exec.Command("/bin/true", "before-the-container")
	require.NoError(t, before.Run())
	findRecord(t, sink, procattr.EventExec, before.Process.Pid)

	marker := fmt.Sprintf("in-container-%d", time.Now().UnixNano())
	id := fmt.Sprintf("%x", sha256.Sum256([]byte(marker))) // 64 hex digits, like a container id
	dir := filepath.Join(root, "docker-"+id+".scope")
	require.NoError(t, os.Mkdir(dir, 0o755))
	t.Cleanup(func() {
		// The exited process leaves the cgroup asynchronously.
		assert.Eventually(t, func() bool { return os.Remove(dir) == nil }, 5*time.Second, 20*time.Millisecond)
	})
	cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && exec /bin/true "$2"`, "sh", dir, marker)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))

	require.Eventually(t, func() bool {
		for _, logs := range sink.AllLogs() {
			for _, rl := range logs.ResourceLogs().All() {
				for _, lr := range rl.ScopeLogs().At(0).LogRecords().All() {
					args, _ := attr(lr, procattr.ProcessCommandArgs).([]any)
					if !slices.Equal(args, []any{"/bin/true", marker}) { // not the sh that moved itself
						continue
					}
					cid, _ := rl.Resource().Attributes().Get(procattr.ContainerID)
					return assert.Equal(t, id, cid.Str()) &&
						assert.Equal(t, "0::/docker-"+id+".scope", attr(lr, procattr.ProcessLinuxCgroup))
				}
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond)
}

// On a quiet host the reader waits for the next event without bound, so
// the records of the last burst are sent when it ends, not held until then.
func TestLastBurstIsSentWhenQuiet(t *testing.T) {
	testenv.RequireRoot(t)
	root, err := cgroup.V2Root()
	require.NoError(t, err)
	dir := filepath.Join(root, fmt.Sprintf("execsnoop-quiet-%d", os.Getpid()))
	require.NoError(t, os.Mkdir(dir, 0o755))
	t.Cleanup(func() {
		assert.Eventually(t, func() bool { return os.Remove(dir) == nil }, 5*time.Second, 20*time.Millisecond)
	})
	cfg := testConfig()
	cfg.Filters.Cgroup = dir // nothing else runs there: the receiver is idle
	sink := new(consumertest.LogsSink)
	startReceiver(t, cfg, sink)
	cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && exec /bin/true last-of-a-burst`, "sh", dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	findRecord(t, sink, procattr.EventExit, cmd.Process.Pid)
}
