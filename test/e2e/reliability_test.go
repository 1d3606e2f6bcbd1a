//go:build linux

package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// Backend outage and collector restart: records queued on disk while the
// sink is down survive a restart of the collector and all arrive.
func TestDurableAcrossOutageAndRestart(t *testing.T) {
	bin := collectortest.Binary(t)
	sinkPort := testenv.Port(t)
	out := filepath.Join(t.TempDir(), "logs.json")
	storage := t.TempDir()
	env := func(cmd *exec.Cmd) {
		cmd.Env = append(os.Environ(),
			fmt.Sprintf("OTEL_EXPORTER_OTLP_ENDPOINT=127.0.0.1:%d", sinkPort), "EXECSNOOP_STORAGE_DIR="+storage)
	}
	source := collectortest.Start(t, bin, "durable", "../../config/durable.yaml", env)

	marker := fmt.Sprintf("durable-%d", time.Now().UnixNano())
	const n = 20
	for i := range n {
		if err := exec.Command("/bin/true", fmt.Sprintf("%s-%d", marker, i)).Run(); err != nil {
			t.Fatal(err)
		}
	}
	// Let the batches reach the on-disk queue: drain (50ms), the receiver's
	// batch (200ms) and the batch processor (200ms), with room for a busy CI.
	time.Sleep(2 * time.Second)
	source.Stop(t)
	collectortest.Start(t, bin, "durable-restarted", "../../config/durable.yaml", env)
	collectortest.Start(t, bin, "sink", collectortest.WriteConfig(t, "sink", collectortest.SinkConfig(sinkPort, out, "logs")))

	deadline := time.Now().Add(30 * time.Second)
	for {
		seen := map[string]bool{}
		for _, lr := range collectortest.LogRecords(out) {
			args, _ := attr(lr, "process.command_args").([]any)
			if len(args) == 2 && strings.HasPrefix(fmt.Sprint(args[1]), marker+"-") {
				seen[fmt.Sprint(args[1])] = true
			}
		}
		if len(seen) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d exec records arrived after the outage and restart", len(seen), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Overload: a stalled pipeline (the debug exporter blocks on a stdout
// nobody reads) lets a one-page kernel buffer overflow during a storm. The
// loss shows in the receiver's telemetry and in a warning, and records flow
// again once the pipeline moves.
func TestOverloadIsCountedAndRecovers(t *testing.T) {
	bin := collectortest.Binary(t)
	metricsPort := testenv.Port(t)
	config := `
receivers:
  execsnoop:
    buffer:
      size: 4096
    batch:
      max_size: 1
exporters:
  debug:
    verbosity: detailed
    use_internal_logger: false
service:
  pipelines:
    logs:
      receivers: [execsnoop]
      exporters: [debug]
` + collectortest.TelemetryConfig(metricsPort)
	stdout, stdoutWriter, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// Closed after the collector has stopped (cleanups run last-in,
	// first-out): closing it earlier kills the collector with SIGPIPE while
	// its debug exporter still writes the backlog.
	t.Cleanup(func() { stdout.Close() })
	c := collectortest.Start(t, bin, "overloaded", collectortest.WriteConfig(t, "overload", config), func(cmd *exec.Cmd) {
		cmd.Stdout = stdoutWriter
	})
	stdoutWriter.Close()

	// The pipe's 64 KiB fill within a few records; the storm overflows the ring.
	for i := range 300 {
		_ = exec.Command("/bin/true", fmt.Sprint("storm-", i)).Run()
	}
	printed := new(testenv.SyncBuffer)
	go func() { _, _ = io.Copy(printed, stdout) }()

	deadline := time.Now().Add(15 * time.Second)
	for collectortest.Metric(metricsPort, "otelcol_execsnoop_receiver_events_lost") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no lost events in the receiver's telemetry after the storm:\n%s", c.Output)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(c.Output.String(), "process events were lost in the kernel") {
		t.Errorf("no warning about lost events in the log:\n%s", c.Output)
	}
	marker := fmt.Sprintf("after-storm-%d", time.Now().UnixNano())
	if err := exec.Command("/bin/true", marker).Run(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for !strings.Contains(printed.String(), marker) {
		if time.Now().After(deadline) {
			t.Fatal("no record after the storm")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A memory_limiter that refuses everything: the refusals are counted and the
// collector keeps running.
func TestRefusedByMemoryLimiterIsCounted(t *testing.T) {
	bin := collectortest.Binary(t)
	metricsPort := testenv.Port(t)
	config := `
receivers:
  execsnoop:
processors:
  memory_limiter:
    check_interval: 100ms
    limit_mib: 2
    spike_limit_mib: 1
exporters:
  debug:
service:
  pipelines:
    logs:
      receivers: [execsnoop]
      processors: [memory_limiter]
      exporters: [debug]
` + collectortest.TelemetryConfig(metricsPort)
	c := collectortest.Start(t, bin, "refusing", collectortest.WriteConfig(t, "refusing", config))
	deadline := time.Now().Add(15 * time.Second)
	for collectortest.Metric(metricsPort, "otelcol_execsnoop_receiver_records_refused") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no refused records counted:\n%s", c.Output)
		}
		_ = exec.Command("/bin/true", "refused").Run()
		time.Sleep(100 * time.Millisecond)
	}
	if collectortest.Metric(metricsPort, "otelcol_receiver_refused_log_records") == 0 {
		t.Error("ObsReport did not count the refusal")
	}
	select {
	case <-c.Exited:
		t.Fatalf("the collector died: %v\n%s", c.Err, c.Output)
	default:
	}
	if !strings.Contains(c.Output.String(), "the next consumer refused log records or spans") {
		t.Errorf("no warning about refused records:\n%s", c.Output)
	}
}

// Bad config fails start-up with the field's name; unknown keys are refused.
func TestBadConfigIsRejected(t *testing.T) {
	bin := collectortest.Binary(t)
	for _, tc := range []struct{ receiver, want string }{
		{"execsnoop:\n    buffer:\n      type: pipe", "buffer.type"},
		{"execsnoop:\n    args:\n      max_bytes: 1000000", "args.max_bytes"},
		{"execsnoop:\n    failed_execs: sometimes", "failed_execs"},
		{"execsnoop:\n    batch:\n      flush_interval: -1s", "batch.flush_interval"},
		{"execsnoop:\n    buffers:\n      size: 4096", "buffers"},
	} {
		config := fmt.Sprintf("receivers:\n  %s\nexporters:\n  debug:\nservice:\n  pipelines:\n    logs:\n      receivers: [execsnoop]\n      exporters: [debug]\n", tc.receiver)
		out, err := exec.Command(bin, "validate", "--config", collectortest.WriteConfig(t, "bad", config)).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("config %q: err %v, output does not name %q:\n%s", tc.receiver, err, tc.want, out)
		}
	}
}

// Least privilege: CAP_BPF and CAP_PERFMON are enough for a non-root user;
// without them start-up fails with one line that says what to grant.
func TestLeastPrivilege(t *testing.T) {
	bin := collectortest.Binary(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv (util-linux) is needed")
	}
	// The binary must be reachable by the unprivileged user.
	copyBin := testenv.SharedCopy(t, bin)
	dir := filepath.Dir(copyBin)
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte(`
receivers:
  execsnoop:
exporters:
  debug:
    verbosity: detailed
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [execsnoop]
      exporters: [debug]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	asNobody := []string{"--reuid=65534", "--regid=65534", "--clear-groups"}

	out, err := exec.Command("setpriv", append(asNobody, copyBin, "--config", config)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "loading BPF needs CAP_BPF and CAP_PERFMON") {
		t.Errorf("without capabilities: err %v, want a clear error:\n%s", err, out)
	}

	withCaps := append(asNobody, "--inh-caps=+bpf,+perfmon", "--ambient-caps=+bpf,+perfmon", copyBin, "--config", config)
	c := collectortest.Start(t, "setpriv", "unprivileged", "", func(cmd *exec.Cmd) { cmd.Args = append([]string{"setpriv"}, withCaps...) })
	marker := fmt.Sprintf("least-privilege-%d", time.Now().UnixNano())
	if err := exec.Command("/bin/true", marker).Run(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(c.Output.String(), marker) {
		if time.Now().After(deadline) {
			t.Fatalf("no record as a user with CAP_BPF and CAP_PERFMON only:\n%s", c.Output)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Shutdown under load: SIGTERM during a storm exits cleanly, flushes what
// was read, and leaves none of the collector's BPF programs loaded.
func TestShutdownUnderLoad(t *testing.T) {
	bin := collectortest.Binary(t)
	port, out := collectortest.StartSink(t, bin, "logs")
	source := collectortest.Start(t, bin, "source", collectortest.WriteConfig(t, "source", sourceConfig(port, "", "", "logs")))
	progs := bpfProgramIDs(t, source.Cmd.Process.Pid)
	if len(progs) == 0 {
		t.Fatal("the collector holds no BPF programs")
	}

	stop := make(chan struct{})
	stormDone := make(chan struct{})
	go func() {
		defer close(stormDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				_ = exec.Command("/bin/true", fmt.Sprint("shutdown-storm-", i)).Run()
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	source.Stop(t)
	close(stop)
	<-stormDone

	// The kernel frees a program after an RCU grace period, so allow a moment.
	for _, id := range progs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := exec.Command("bpftool", "prog", "show", "id", id).CombinedOutput()
			if err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("BPF program %s is still loaded 10s after the collector exited: %s", id, out)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for !containsRecord(collectortest.LogRecords(out), "shutdown-storm-") {
		if time.Now().After(deadline) {
			t.Fatal("no record of the storm reached the sink")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containsRecord(recs []plog.LogRecord, argPrefix string) bool {
	for _, lr := range recs {
		args, _ := attr(lr, "process.command_args").([]any)
		if len(args) == 2 && strings.HasPrefix(fmt.Sprint(args[1]), argPrefix) {
			return true
		}
	}
	return false
}

// bpfProgramIDs lists the BPF programs a process holds file descriptors to.
func bpfProgramIDs(t *testing.T, pid int) []string {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fdinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, fd := range fds {
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(info)) {
			if id, ok := strings.CutPrefix(line, "prog_id:"); ok {
				ids = append(ids, strings.TrimSpace(id))
			}
		}
	}
	return ids
}

// A kernel without BTF: start-up fails with one line that names what is
// missing and the oldest kernel that works. /sys/kernel/btf is hidden
// under an empty tmpfs in a private mount namespace.
func TestKernelWithoutBTF(t *testing.T) {
	bin := collectortest.Binary(t)
	config := collectortest.WriteConfig(t, "nobtf", "receivers:\n  execsnoop:\nexporters:\n  debug:\n"+
		"service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n    logs:\n      receivers: [execsnoop]\n      exporters: [debug]\n")
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs none /sys/kernel/btf && exec "$0" --config "$1"`, bin, config).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "exposes no usable BTF") || !strings.Contains(string(out), "Linux 5.10 or later") {
		t.Errorf("without BTF: err %v, want one line naming BTF and the oldest kernel:\n%s", err, out)
	}
}
