//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelexecsnoop/execsnoop/internal/cgroup"
	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// lineage is what /proc says of the parent of a chain's sleep while it is
// alive: what the sleep's exec record must say.
type lineage struct {
	exe   string
	args  []any
	pids  []any
	names []any
}

func procLineage(parent int) lineage {
	pids, names := testenv.ProcAncestry(parent, 8)
	l := lineage{exe: testenv.ProcExe(parent)}
	for _, a := range testenv.ProcArgs(parent) {
		l.args = append(l.args, a)
	}
	for i := range pids {
		l.pids, l.names = append(l.pids, pids[i]), append(l.names, names[i])
	}
	return l
}

func execOf(t *testing.T, out string, pid int) plog.LogRecord {
	t.Helper()
	return waitRecord(t, out, fmt.Sprintf("exec of pid %d", pid), func(lr plog.LogRecord) bool {
		return lr.EventName() == "process.exec" && attr(lr, "process.pid") == int64(pid)
	})
}

func checkLineage(t *testing.T, what string, rec plog.LogRecord, want lineage, source string) {
	t.Helper()
	for key, v := range map[string]any{
		"execsnoop.parent.source":             source,
		"execsnoop.parent.executable.path":    want.exe,
		"execsnoop.parent.command_args":       want.args,
		"execsnoop.ancestors.pid":             want.pids,
		"execsnoop.ancestors.executable.name": want.names,
	} {
		if got := attr(rec, key); fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("%s: %s = %#v, want %#v (from /proc)", what, key, got, v)
		}
	}
}

// TestLineageMatchesProc: the exec records of a chain bash -> sh -> sleep
// name the parent's path and arguments and the ancestors as /proc has them
// while the chain is alive: from the execs the collector saw for a chain
// started after it, from /proc for one started before it. With exits off,
// the exit program the table loads sends no exit record.
func TestLineageMatchesProc(t *testing.T) {
	bin := collectortest.Binary(t)
	port, out := collectortest.StartSink(t, bin, "logs")
	before := testenv.StartChain(t, fmt.Sprintf("before-%d", time.Now().UnixNano()), true)
	collectortest.Start(t, bin, "source", collectortest.WriteConfig(t, "source", sourceConfig(port, "exits: false\n", "", "logs")))

	after := testenv.StartChain(t, fmt.Sprintf("after-%d", time.Now().UnixNano()), false)
	checkLineage(t, "a chain started after the collector", execOf(t, out, after.Sleep), procLineage(after.Sh), "exec")
	// sh's own exec was seen too: its parent is bash.
	checkLineage(t, "its sh", execOf(t, out, after.Sh), procLineage(after.Bash.Process.Pid), "exec")

	// sh ran before the collector: it is known from /proc.
	before.Release(t)
	checkLineage(t, "a chain started before the collector", execOf(t, out, before.Sleep), procLineage(before.Sh), "procfs")

	// The sleep exits before the marker execs; the ring buffer keeps
	// their order, so an exit record would arrive no later.
	sleep, err := os.FindProcess(after.Sleep)
	if err != nil {
		t.Fatal(err)
	}
	_ = sleep.Kill()
	testenv.WaitGone(t, after.Sleep)
	marker := exec.Command("/bin/true", fmt.Sprintf("after-exit-%d", time.Now().UnixNano()))
	if err := marker.Run(); err != nil {
		t.Fatal(err)
	}
	execOf(t, out, marker.Process.Pid)
	for _, lr := range collectortest.LogRecords(out) {
		if lr.EventName() == "process.exit" {
			t.Fatalf("exits: false, and an exit record arrived: %v", lr.Attributes().AsRaw())
		}
	}
}

// TestProcessTableBoundIsCounted: with room for 16 processes, the host's
// processes overflow the table at start-up (counted before the collector
// is ready), and 100 more alive at once in a cgroup the receiver is
// limited to overflow it again: at least 100 - 16 more drops after the
// storm than before it, since none of them exits and the table holds at
// most 16. Other processes on the host are outside the cgroup filter and
// do not move the count.
func TestProcessTableBoundIsCounted(t *testing.T) {
	const bound, storm = 16, 100
	bin := collectortest.Binary(t)
	metricsPort := testenv.Port(t)
	root, err := cgroup.V2Root()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, fmt.Sprintf("execsnoop-e2e-table-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) })
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	config := fmt.Sprintf(`
receivers:
  execsnoop:
    filters:
      cgroup: %s
    lineage:
      max_processes: %d
exporters:
  debug:
    verbosity: basic
service:
  pipelines:
    logs:
      receivers: [execsnoop]
      exporters: [debug]
`, dir, bound) + collectortest.TelemetryConfig(metricsPort)
	c := collectortest.Start(t, bin, "bounded", collectortest.WriteConfig(t, "bounded", config))
	const metric = "otelcol_execsnoop_receiver_process_table_dropped"
	// The host runs more than 16 processes: the start-up drops show
	// once the endpoint answers.
	deadline := time.Now().Add(testenv.Timeout(20 * time.Second))
	for collectortest.Metric(metricsPort, metric) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no start-up drops in %s with max_processes %d:\n%s", metric, bound, c.Output)
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := collectortest.Metric(metricsPort, metric)

	for range storm {
		sleep := exec.Command("/bin/sleep", "1000")
		sleep.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
		if err := sleep.Start(); err != nil { // returns once sleep has been exec'd
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sleep.Process.Kill(); _ = sleep.Wait() })
	}
	deadline = time.Now().Add(testenv.Timeout(20 * time.Second))
	for collectortest.Metric(metricsPort, metric) < start+storm-bound {
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v, started at %v: want at least %d more after %d live processes in a table of %d\n%s",
				metric, collectortest.Metric(metricsPort, metric), start, storm-bound, storm, bound, c.Output)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(c.Output.String(), "the process table is full") {
		t.Errorf("no warning about the full process table in the log:\n%s", c.Output)
	}
}

// TestExecContextWithoutLineage: exec_context [credentials] keeps the
// credentials and leaves out the lineage and the session.
func TestExecContextWithoutLineage(t *testing.T) {
	bin := collectortest.Binary(t)
	port, out := collectortest.StartSink(t, bin, "logs")
	collectortest.Start(t, bin, "source", collectortest.WriteConfig(t, "source",
		sourceConfig(port, "exec_context: [credentials]\n", "", "logs")))
	chain := testenv.StartChain(t, fmt.Sprintf("ctx-%d", time.Now().UnixNano()), false)
	rec := execOf(t, out, chain.Sleep)
	if attr(rec, "process.real_user.id") == nil || attr(rec, "execsnoop.saved_group.id") == nil {
		t.Errorf("no credentials: %v", rec.Attributes().AsRaw())
	}
	var found []string
	for k := range rec.Attributes().All() {
		if strings.HasPrefix(k, "execsnoop.parent.source") || strings.HasPrefix(k, "execsnoop.parent.executable") ||
			strings.HasPrefix(k, "execsnoop.parent.command_args") || strings.HasPrefix(k, "execsnoop.ancestors.") ||
			slices.Contains([]string{"process.session_leader.pid", "process.group_leader.pid", "process.interactive",
				"execsnoop.tty", "execsnoop.audit.session_id", "process.vpid"}, k) {
			found = append(found, k)
		}
	}
	if len(found) > 0 {
		t.Errorf("exec_context [credentials] gives lineage or session attributes %v: %v", found, rec.Attributes().AsRaw())
	}
	// The identity is no group: it stays.
	if attr(rec, "execsnoop.exec.id") == nil || attr(rec, "execsnoop.parent.exec.id") == nil {
		t.Errorf("no exec ids: %v", rec.Attributes().AsRaw())
	}
}
