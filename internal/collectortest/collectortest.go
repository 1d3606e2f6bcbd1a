// Package collectortest runs otelcol-execsnoop processes for the end-to-end
// tests, the CLI's tests and the benchmark: finding the binary, starting a
// collector and waiting until it is ready, a sink that writes what it
// receives to a file, and reading that file and the Prometheus endpoint.
package collectortest

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// Binary is bin/otelcol-execsnoop (built by `make build`), or
// $OTELCOL_EXECSNOOP_BIN.
func Binary(t testing.TB) string {
	t.Helper()
	testenv.RequireRoot(t)
	bin := os.Getenv("OTELCOL_EXECSNOOP_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot(), "bin", "otelcol-execsnoop")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v: run `make build` first", err)
		}
		t.Skipf("%s is not built: run `make build` first", bin)
	}
	return bin
}

// repoRoot is the directory of the root go.mod above the working directory.
func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if raw, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
			bytes.HasPrefix(raw, []byte("module github.com/otelexecsnoop/execsnoop\n")) {
			return d
		}
	}
	return dir
}

// Collector is one running otelcol-execsnoop.
type Collector struct {
	Cmd    *exec.Cmd
	Output *testenv.SyncBuffer // stderr, and stdout unless setup took it
	Exited chan struct{}
	Err    error // the exit status, once Exited is closed
}

// WriteConfig stores a config in the test's temporary directory.
func WriteConfig(t testing.TB, name, config string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Start runs bin on a config file and waits until it says it is ready;
// setup may adjust the command first (environment, stdout, credentials).
// The collector is stopped when the test ends.
func Start(t testing.TB, bin, name, configPath string, setup ...func(*exec.Cmd)) *Collector {
	t.Helper()
	c := &Collector{Cmd: exec.Command(bin, "--config", configPath), Output: new(testenv.SyncBuffer), Exited: make(chan struct{})}
	c.Cmd.Stdout, c.Cmd.Stderr = c.Output, c.Output
	for _, f := range setup {
		f(c.Cmd)
	}
	if err := c.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.Err = c.Cmd.Wait()
		close(c.Exited)
	}()
	t.Cleanup(func() { c.Stop(t) })
	deadline := time.After(30 * time.Second)
	for !strings.Contains(c.Output.String(), "Everything is ready") {
		select {
		case <-c.Exited:
			t.Fatalf("%s exited before it was ready (%v):\n%s", name, c.Err, c.Output)
		case <-deadline:
			t.Fatalf("%s was not ready within 30s:\n%s", name, c.Output)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return c
}

// Stop sends SIGTERM and requires a clean exit within 20 seconds.
func (c *Collector) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-c.Exited:
		return
	default:
	}
	_ = c.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.Exited:
		if c.Err != nil {
			t.Errorf("collector exited with %v:\n%s", c.Err, c.Output)
		}
	case <-time.After(20 * time.Second):
		_ = c.Cmd.Process.Kill()
		<-c.Exited
		t.Errorf("collector ignored SIGTERM for 20s:\n%s", c.Output)
	}
}

// SinkConfig is a collector that receives OTLP/gRPC on a loopback port and
// writes one pipeline's data ("logs" or "traces") to a file as OTLP JSON.
func SinkConfig(port int, path, signal string) string {
	return fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
exporters:
  file:
    path: %s
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    %s:
      receivers: [otlp]
      exporters: [file]
`, port, path, signal)
}

// StartSink starts a sink for one signal and returns its port and file.
func StartSink(t testing.TB, bin, signal string) (int, string) {
	t.Helper()
	port := testenv.Port(t)
	out := filepath.Join(t.TempDir(), signal+".json")
	Start(t, bin, signal+"-sink", WriteConfig(t, "sink", SinkConfig(port, out, signal)))
	return port, out
}

// lines reads the file exporter's output, one OTLP JSON document a line;
// a line still being written is passed over.
func lines(path string, each func([]byte)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	for sc.Scan() {
		each(sc.Bytes())
	}
}

// EachLogRecord calls f for every log record in a sink's file.
func EachLogRecord(path string, f func(plog.ResourceLogs, plog.ScopeLogs, plog.LogRecord)) {
	var um plog.JSONUnmarshaler
	lines(path, func(line []byte) {
		logs, err := um.UnmarshalLogs(line)
		if err != nil {
			return
		}
		for _, rl := range logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					f(rl, sl, lr)
				}
			}
		}
	})
}

// LogRecords is every log record in a sink's file.
func LogRecords(path string) []plog.LogRecord {
	var out []plog.LogRecord
	EachLogRecord(path, func(_ plog.ResourceLogs, _ plog.ScopeLogs, lr plog.LogRecord) { out = append(out, lr) })
	return out
}

// EachSpan calls f for every span in a sink's file.
func EachSpan(path string, f func(ptrace.ResourceSpans, ptrace.ScopeSpans, ptrace.Span)) {
	var um ptrace.JSONUnmarshaler
	lines(path, func(line []byte) {
		traces, err := um.UnmarshalTraces(line)
		if err != nil {
			return
		}
		for _, rs := range traces.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					f(rs, ss, s)
				}
			}
		}
	})
}

// Spans is every span in a sink's file.
func Spans(path string) []ptrace.Span {
	var out []ptrace.Span
	EachSpan(path, func(_ ptrace.ResourceSpans, _ ptrace.ScopeSpans, s ptrace.Span) { out = append(out, s) })
	return out
}

// Attr is an attribute as a plain Go value ([]any for arrays), or nil.
func Attr(m pcommon.Map, key string) any {
	v, ok := m.Get(key)
	if !ok {
		return nil
	}
	return v.AsRaw()
}

// TelemetryConfig is the service.telemetry section that serves the
// collector's own metrics, the receiver's included, on a Prometheus port.
func TelemetryConfig(port int) string {
	return fmt.Sprintf(`
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
`, port)
}

// Metric sums a metric family on a collector's Prometheus endpoint; 0 when
// it is absent or the endpoint does not answer.
func Metric(port int, name string) float64 {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			total += v
		}
	}
	return total
}
