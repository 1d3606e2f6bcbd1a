package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelexecsnoop/execsnoop/internal/cgroup"
	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"
)

// The CLI's --json output is documented to carry the receiver's names and
// values: the real receiver and the real CLI watch the same processes in a
// pod's container cgroup (an exec, a failed exec, an exit), and each record
// of one equals the other's, resource included.
func TestJSONEqualsTheReceiver(t *testing.T) {
	testenv.RequireRoot(t)
	root, err := cgroup.V2Root()
	require.NoError(t, err)

	factory := execsnoopreceiver.NewFactory()
	cfg := factory.CreateDefaultConfig().(*execsnoopreceiver.Config)
	cfg.Exits = true
	cfg.Filters.ExcludeSelf = false // the test's children
	// Each waits for its hash by default as long as it batches (the
	// receiver 200 ms, the CLI 50 ms): a slow machine (a TCG guest) hashes
	// in between, and one would say timeout where the other has the hash.
	// The same ample wait makes both name the same identity.
	hashWait := min(testenv.Timeout(5*time.Second), time.Minute)
	cfg.Executable.Hash.MaxWait = hashWait
	sink := new(consumertest.LogsSink)
	rcv, err := factory.CreateLogs(context.Background(), receivertest.NewNopSettings(factory.Type()), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	c := startCLI(t, "--json", "-x", "--exits", "--hash-max-wait", hashWait.String())

	// A pod's container cgroup as the kubelet's cgroupfs driver names it.
	mark := marker()
	const podUID = "7f9d3c1e-2b4a-4c8d-9e1f-0a2b3c4d5e6f"
	containerID := strings.Repeat(fmt.Sprintf("%016x", time.Now().UnixNano()), 4)
	top := filepath.Join(root, "execsnoop-test-"+mark)
	dir := filepath.Join(top, "pod"+podUID, containerID)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	t.Cleanup(func() {
		// The exited processes leave the cgroup asynchronously.
		assert.Eventually(t, func() bool {
			return os.Remove(dir) == nil && os.Remove(filepath.Dir(dir)) == nil && os.Remove(top) == nil
		}, waitFor, 20*time.Millisecond)
	})
	missing := "/nonexistent/" + mark
	sh := exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && { "$2"; exec /bin/sh -c 'exit 3' "$3"; }`,
		"sh", dir, missing, mark)
	out, err := sh.CombinedOutput()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, string(out))
	require.Equal(t, 3, exitErr.ExitCode(), string(out))

	pid := int64(sh.Process.Pid)
	want := map[string]func(event string, attr func(string) any) bool{
		"exec": func(event string, attr func(string) any) bool {
			return event == procattr.EventExec && attr(procattr.ProcessPID) == pid &&
				slices.Equal(anySlice(attr(procattr.ProcessCommandArgs)), []any{"/bin/sh", "-c", "exit 3", mark})
		},
		"failed exec": func(event string, attr func(string) any) bool {
			return event == procattr.EventExec && slices.Equal(anySlice(attr(procattr.ProcessCommandArgs)), []any{missing})
		},
		"exit": func(event string, attr func(string) any) bool {
			return event == procattr.EventExit && attr(procattr.ProcessPID) == pid
		},
	}
	received := map[string]receivedRecord{}
	require.Eventually(t, func() bool {
		for _, logs := range sink.AllLogs() {
			for _, rl := range logs.ResourceLogs().All() {
				for _, lr := range rl.ScopeLogs().At(0).LogRecords().All() {
					for name, match := range want {
						if match(lr.EventName(), func(k string) any { return collectortest.Attr(lr.Attributes(), k) }) {
							received[name] = receivedRecord{rl.Resource(), lr}
						}
					}
				}
			}
		}
		return len(received) == len(want)
	}, waitFor, 20*time.Millisecond, "the receiver's records")

	printed := map[string]jsonLine{}
	require.Eventually(t, func() bool {
		for _, l := range parseJSONLines(t, completeLines(c.stdout.String())) {
			for name, match := range want {
				if match(l.Event, func(k string) any { return jsonRaw(l.Attributes[k]) }) {
					printed[name] = l
				}
			}
		}
		return len(printed) == len(want)
	}, waitFor, 20*time.Millisecond, "the CLI's records")
	assertStoppedCleanly(t, c, c.stop(t))

	for name := range want {
		r, l := received[name], printed[name]
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, r.record.EventName(), l.Event)
			assert.Equal(t, r.record.SeverityText(), l.Severity)
			assert.Equal(t, r.record.Body().Str(), l.Body)
			assertSameTime(t, "time", r.record.Timestamp().AsTime(), l.Time)
			assert.Equal(t, map[string]string{procattr.ContainerID: containerID, procattr.K8sPodUID: podUID}, l.Resource)
			assert.Equal(t, r.resource.Attributes().AsRaw(), anyMap(l.Resource), "resource")

			attrs := r.record.Attributes().AsRaw()
			assert.ElementsMatch(t, slices.Collect(maps.Keys(attrs)), slices.Collect(maps.Keys(l.Attributes)), "attribute keys")
			for k, v := range attrs {
				switch k {
				case procattr.ProcessExitTime, procattr.ProcessCreationTime:
					assertSameTime(t, k, mustParse(t, v.(string)), l.Attributes[k].(string))
				case procattr.Lifetime, procattr.CPUTimeUser, procattr.CPUTimeSystem:
					// Read at the exit by each probe's program in turn: the
					// second may run a scheduler tick (4 ms) later, as the
					// clocks above may differ; a unit error is off by 1000x.
					f, err := l.Attributes[k].(json.Number).Float64()
					assert.NoError(t, err, k)
					assert.InDelta(t, v, f, sameTimeSlack.Seconds(), k)
				default:
					assert.Equal(t, v, jsonRaw(l.Attributes[k]), k)
				}
			}
		})
	}
}

type receivedRecord struct {
	resource pcommon.Resource
	record   plog.LogRecord
}

// sameTimeSlack is what may differ between two readers of one event: each
// probe's program reads the clock itself when its hook fires, one after the
// other, and each reader converts the boot-time clock to wall time with the
// offset it sampled. Microseconds on a quiet host, but 4.6 ms was seen for a
// failed exec in a TCG guest (trixie), and a busy host may preempt between
// the two programs. A wrong conversion (clock, unit, zone) is off by far more.
const sameTimeSlack = 250 * time.Millisecond

func assertSameTime(t *testing.T, what string, want time.Time, got string) {
	t.Helper()
	d := mustParse(t, got).Sub(want)
	assert.True(t, d < sameTimeSlack && d > -sameTimeSlack, "%s: the CLI's %s, the receiver's %s", what, got, want.UTC().Format(time.RFC3339Nano))
}

func mustParse(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return tm
}

// completeLines drops a last line still being written.
func completeLines(out string) string { return out[:strings.LastIndexByte(out, '\n')+1] }

// jsonRaw turns a decoded JSON value (with UseNumber) into what pcommon's
// AsRaw gives for the same attribute; a number is an int64 (the doubles are
// compared apart, as JSON writes 1.0 as 1).
func jsonRaw(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		return v
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = jsonRaw(v[i])
		}
		return out
	}
	return v
}

func anySlice(v any) []any { s, _ := v.([]any); return s }

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
