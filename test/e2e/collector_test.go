//go:build linux

// Package e2e runs the built collector end to end: otelcol-execsnoop with
// the execsnoop receiver exports over OTLP to a second otelcol-execsnoop
// (otlp receiver -> file exporter), and the tests read what arrived.
package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// collectorBin finds bin/otelcol-execsnoop (built by `make build`).
func collectorBin(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the end-to-end tests load BPF programs and must run as root")
		}
		t.Skip("needs root to load BPF programs")
	}
	bin := os.Getenv("OTELCOL_EXECSNOOP_BIN")
	if bin == "" {
		bin, _ = filepath.Abs("../../bin/otelcol-execsnoop")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s: %v: run `make build` first", bin, err)
		}
		t.Skipf("%s is not built: run `make build` first", bin)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// collector is one running otelcol-execsnoop process.
type collector struct {
	cmd    *exec.Cmd
	output *syncBuffer // stderr, and stdout unless the caller took it
	exited chan struct{}
	err    error // the exit status, once exited is closed
}

// syncBuffer is a bytes.Buffer safe for a writer and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// writeConfig stores a config in the test's temporary directory.
func writeConfig(t *testing.T, name, config string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startCollector runs the binary on a config file and waits until it says
// it is ready. setup may adjust the command (environment, stdout, user).
func startCollector(t *testing.T, bin, name, configPath string, setup ...func(*exec.Cmd)) *collector {
	t.Helper()
	c := &collector{cmd: exec.Command(bin, "--config", configPath), output: new(syncBuffer), exited: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = c.output, c.output
	for _, f := range setup {
		f(c.cmd)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() { c.stop(t) })
	deadline := time.After(30 * time.Second)
	for !strings.Contains(c.output.String(), "Everything is ready") {
		select {
		case <-c.exited:
			t.Fatalf("%s exited before it was ready (%v):\n%s", name, c.err, c.output)
		case <-deadline:
			t.Fatalf("%s was not ready within 30s:\n%s", name, c.output)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return c
}

// stop sends SIGTERM and requires a clean exit.
func (c *collector) stop(t *testing.T) {
	t.Helper()
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		if c.err != nil {
			t.Errorf("collector exited with %v:\n%s", c.err, c.output)
		}
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		t.Errorf("collector ignored SIGTERM for 20s:\n%s", c.output)
	}
}

const sinkConfig = `
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
    logs:
      receivers: [otlp]
      exporters: [file]
`

const sourceConfig = `
receivers:
  execsnoop:
processors:
  batch:
    timeout: 200ms
exporters:
  otlp_grpc:
    endpoint: 127.0.0.1:%d
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [execsnoop]
      processors: [batch]
      exporters: [otlp_grpc]
`

// sink starts the receiving collector and returns its OTLP port and file.
func startSink(t *testing.T, bin string) (int, string) {
	port := freePort(t)
	out := filepath.Join(t.TempDir(), "logs.json")
	startCollector(t, bin, "sink", writeConfig(t, "sink", fmt.Sprintf(sinkConfig, port, out)))
	return port, out
}

// records parses the file exporter's output: one OTLP JSON document a line.
func records(t *testing.T, path string) []plog.LogRecord {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []plog.LogRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var um plog.JSONUnmarshaler
	for sc.Scan() {
		logs, err := um.UnmarshalLogs(sc.Bytes())
		if err != nil {
			continue // a line still being written
		}
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

func attr(lr plog.LogRecord, key string) any {
	v, ok := lr.Attributes().Get(key)
	if !ok {
		return nil
	}
	return v.AsRaw()
}

// waitRecord polls the sink's file for a record that matches.
func waitRecord(t *testing.T, path, what string, match func(plog.LogRecord) bool) plog.LogRecord {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if i := slices.IndexFunc(records(t, path), match); i >= 0 {
			return records(t, path)[i]
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %s record reached the sink", what)
	return plog.LogRecord{}
}

func hasArg(lr plog.LogRecord, arg string) bool {
	args, _ := attr(lr, "process.command_args").([]any)
	return slices.Contains(args, any(arg))
}

func TestExecAndExitReachTheSink(t *testing.T) {
	bin := collectorBin(t)
	port, out := startSink(t, bin)
	startCollector(t, bin, "source", writeConfig(t, "source", fmt.Sprintf(sourceConfig, port)))

	marker := fmt.Sprintf("marker-%d", time.Now().UnixNano())
	// $0 of the shell is the marker, so the record can be found.
	sh := exec.Command("/bin/sh", "-c", "exit 3", marker)
	_ = sh.Run()
	awkward := []string{"/bin/echo", marker, "with space", "", "line\nbreak", "ünï"}
	echo := exec.Command(awkward[0], awkward[1:]...)
	echo.Stdout = nil
	if err := echo.Run(); err != nil {
		t.Fatal(err)
	}
	missing := "/nonexistent/" + marker
	_ = exec.Command(missing, "arg").Run()

	ex := waitRecord(t, out, "sh exec", func(lr plog.LogRecord) bool {
		return lr.EventName() == "process.exec" && hasArg(lr, marker) && attr(lr, "process.executable.path") == "/bin/sh"
	})
	for key, want := range map[string]any{
		"process.pid":             int64(sh.Process.Pid),
		"process.parent_pid":      int64(os.Getpid()),
		"process.executable.name": "sh",
		"process.command":         "/bin/sh",
		"process.command_args":    []any{"/bin/sh", "-c", "exit 3", marker},
		"process.args_count":      int64(4),
		"process.user.id":         int64(0),
		"thread.name":             "sh",
		"execsnoop.exec.retval":   int64(0),
		"execsnoop.exec.syscall":  "execve",
	} {
		if got := attr(ex, key); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("exec %s = %#v, want %#v", key, got, want)
		}
	}
	if ex.SeverityText() != "INFO" || !strings.Contains(ex.Body().Str(), "'exit 3' "+marker) {
		t.Errorf("exec severity %s body %q", ex.SeverityText(), ex.Body().Str())
	}

	exit := waitRecord(t, out, "sh exit", func(lr plog.LogRecord) bool {
		return lr.EventName() == "process.exit" && attr(lr, "process.pid") == int64(sh.Process.Pid)
	})
	if attr(exit, "process.exit.code") != int64(3) || attr(exit, "thread.name") != "sh" {
		t.Errorf("exit record attributes %v", exit.Attributes().AsRaw())
	}

	echoRec := waitRecord(t, out, "echo exec", func(lr plog.LogRecord) bool {
		return lr.EventName() == "process.exec" && attr(lr, "process.pid") == int64(echo.Process.Pid)
	})
	var want []any
	for _, a := range awkward {
		want = append(want, a)
	}
	if got := attr(echoRec, "process.command_args"); !slices.Equal(got.([]any), want) {
		t.Errorf("echo argv %q, want %q", got, want)
	}

	failed := waitRecord(t, out, "failed exec", func(lr plog.LogRecord) bool {
		return attr(lr, "process.executable.path") == missing
	})
	if attr(failed, "error.type") != "ENOENT" || attr(failed, "execsnoop.exec.retval") != int64(-2) || failed.SeverityText() != "WARN" {
		t.Errorf("failed exec attributes %v severity %s", failed.Attributes().AsRaw(), failed.SeverityText())
	}
}

// Secrets in argv never reach the sink in clear (redaction is on by default).
func TestSecretsAreRedacted(t *testing.T) {
	bin := collectorBin(t)
	port, out := startSink(t, bin)
	startCollector(t, bin, "source", writeConfig(t, "source", fmt.Sprintf(sourceConfig, port)))

	marker := fmt.Sprintf("marker-%d", time.Now().UnixNano())
	cmd := exec.Command("/bin/echo", marker, "--password=hunter2", "https://u:s3cr3t@host", "--token", "tok3n")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	rec := waitRecord(t, out, "redacted exec", func(lr plog.LogRecord) bool {
		return attr(lr, "process.pid") == int64(cmd.Process.Pid)
	})
	want := []any{"/bin/echo", marker, "--password=****", "https://u:****@host", "--token", "****"}
	if got := attr(rec, "process.command_args"); !slices.Equal(got.([]any), want) || attr(rec, "execsnoop.args.redacted") != true {
		t.Errorf("args %q redacted=%v, want %q", got, attr(rec, "execsnoop.args.redacted"), want)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "s3cr3t", "tok3n"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("%q reached the sink in clear", secret)
		}
	}
}
