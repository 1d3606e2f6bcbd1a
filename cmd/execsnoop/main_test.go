package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// These tests build the binary, run it as root with real eBPF, run known
// commands with a unique marker argument, stop it with SIGTERM and parse
// what it printed.

var binary string // built by TestMain, or EXECSNOOP_BIN

func TestMain(m *testing.M) {
	// A prebuilt binary, as in the virtual machines of test/kernels,
	// where there is no Go toolchain.
	if binary = os.Getenv("EXECSNOOP_BIN"); binary != "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "execsnoop-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "execsnoop")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building execsnoop: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var waitFor = testenv.Timeout(10 * time.Second)

func marker() string { return fmt.Sprintf("marker-%d", time.Now().UnixNano()) }

type cli struct {
	cmd            *exec.Cmd
	stdout, stderr testenv.SyncBuffer
	done           chan struct{}
	waitErr        error
}

// startCLI runs execsnoop and waits until its probe is attached: it says
// so on stderr (and prints the table header) only then.
func startCLI(t *testing.T, args ...string) *cli {
	t.Helper()
	return startCommand(t, exec.Command(binary, args...))
}

// startCommand is startCLI for a command that runs execsnoop (e.g. in a
// namespace).
func startCommand(t *testing.T, cmd *exec.Cmd) *cli {
	t.Helper()
	args := cmd.Args
	c := &cli{cmd: cmd, done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.waitErr = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(c.stderr.String(), "execsnoop: tracing") {
		select {
		case <-c.done:
			t.Fatalf("execsnoop %q ended before tracing: %v\nstderr: %s", args, c.waitErr, c.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("execsnoop %q did not start tracing within %s; stderr: %s", args, waitFor, c.stderr.String())
		}
	}
	return c
}

// stop sends SIGTERM and waits for the exit; it returns the exit code.
func (c *cli) stop(t *testing.T) int {
	t.Helper()
	return c.stopWith(t, syscall.SIGTERM)
}

// runMarked runs a command to its end; its exit status does not matter.
func runMarked(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running %s: %v", name, err)
	}
	return cmd
}

var summaryRE = regexp.MustCompile(`(?m)^execsnoop: (\d+) events seen, (\d+) lost`)

// assertStoppedCleanly checks the exit status and the summary line.
func assertStoppedCleanly(t *testing.T, c *cli, code int) {
	t.Helper()
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM; stderr: %s", code, c.stderr.String())
	}
	m := summaryRE.FindStringSubmatch(c.stderr.String())
	if m == nil {
		t.Fatalf("no summary on stderr: %s", c.stderr.String())
	}
	if seen, _ := strconv.Atoi(m[1]); seen == 0 {
		t.Errorf("summary counts no events: %s", m[0])
	}
}

func TestSignalsEndCleanly(t *testing.T) {
	testenv.RequireRoot(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		c := startCLI(t, "--quiet")
		runMarked(t, "/bin/true", marker())
		if err := c.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.done:
		case <-time.After(3 * waitFor):
			t.Fatalf("no exit after %s", sig)
		}
		if c.waitErr != nil {
			t.Errorf("%s: %v; stderr: %s", sig, c.waitErr, c.stderr.String())
		}
		if c.stdout.String() != "" {
			t.Errorf("--quiet printed %q", c.stdout.String())
		}
		if !summaryRE.MatchString(c.stderr.String()) {
			t.Errorf("%s: no summary in %q", sig, c.stderr.String())
		}
	}
}

// A reader held up by its output loses events once the buffer is full,
// and says so while it runs, not only in the summary at the end.
func TestLostEventsAreWarnedWhileRunning(t *testing.T) {
	testenv.RequireRoot(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := &cli{cmd: exec.Command(binary, "--json", "--buffer-size", "4096"), done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = w, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() { c.waitErr = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.cmd.Process.Kill(); <-c.done })
	require.Eventually(t, func() bool { return strings.Contains(c.stderr.String(), "execsnoop: tracing") },
		waitFor, 10*time.Millisecond, "execsnoop did not start; stderr: %s", c.stderr.String())
	// Nobody reads stdout yet: the pipe and the CLI's 64 KiB of buffered
	// JSON fill up (a few hundred lines), its reader blocks, and the
	// 4 KiB ring buffer overflows.
	m := marker()
	for i := range 1000 {
		runMarked(t, "/bin/true", fmt.Sprintf("%s-%d", m, i))
	}
	go io.Copy(io.Discard, r)
	require.Eventually(t, func() bool {
		return regexp.MustCompile(`execsnoop: lost \d+ events \(total \d+\): buffer full .*raise --buffer-size`).MatchString(c.stderr.String())
	}, waitFor, 20*time.Millisecond, "no loss warning while running; stderr: %s", c.stderr.String())
	if code := c.stop(t); code != 0 {
		t.Errorf("exit status %d; stderr: %s", code, c.stderr.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"-z"}, {"-u", "root"}, {"--buffer", "pipe"}, {"--max-bytes", "999999"}, {"stray"},
		{"--drain-period", "0"}, {"--drain-period", "1h"}, {"--drain-period", "fast"}} {
		var stderr bytes.Buffer
		cmd := exec.Command(binary, args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitCode() != 2 {
			t.Errorf("%q: %v, want exit status 2", args, err)
		}
		if s := stderr.String(); strings.Count(s, "\n") != 1 || !strings.HasPrefix(s, "execsnoop: ") {
			t.Errorf("%q: stderr %q, want one line", args, s)
		}
	}
	out, err := exec.Command(binary, "--help").Output()
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, flag := range []string{"-T", "-t", "-U", "-x", "-u", "-n", "-l", "-c", "-q", "--max-args", "--max-bytes",
		"--exits", "--buffer", "--buffer-size", "--drain-period", "--json", "--otlp", "--otlp-endpoint", "--otlp-insecure", "--quiet",
		"--redact", "--no-redact", "Examples:", "execsnoop.args.escaped"} {
		if !strings.Contains(string(out), flag) {
			t.Errorf("--help does not mention %s", flag)
		}
	}
}

// Without CAP_BPF and CAP_PERFMON the CLI says what to grant, on one line,
// and exits 1.
func TestMissingPrivileges(t *testing.T) {
	testenv.RequireRoot(t) // to drop to an unprivileged user
	// The binary sits in a private temporary directory; run a copy the
	// unprivileged user can reach.
	bin := testenv.SharedCopy(t, binary)
	var stderr bytes.Buffer
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin)
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("as uid 65534: %v, want exit status 1", err)
	}
	if s := stderr.String(); strings.Count(s, "\n") != 1 || !strings.Contains(s, "needs CAP_BPF and CAP_PERFMON") {
		t.Errorf("stderr %q, want one line that names the capabilities", s)
	}
}

// A kernel without BTF (hidden under an empty tmpfs in a private mount
// namespace): one line naming what is missing and the oldest kernel that
// works, exit status 1.
// In a PID namespace of its own, as in a container without the host's, the
// CLI is pid 1 there. It excludes its own tree by the pid the kernel sees,
// so host processes, all descendants of the host's pid 1, are reported.
func TestOwnPIDNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	c := startCommand(t, exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child", binary, "--json"))
	mark := marker()
	host := runMarked(t, "/bin/true", mark)
	// The CLI is still writing: a last line without its newline is not whole.
	whole := func() string { out := c.stdout.String(); return out[:strings.LastIndexByte(out, '\n')+1] }
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(whole(), mark) {
		if time.Now().After(deadline) {
			t.Fatalf("the host's exec was not reported within %s; stderr: %s", waitFor, c.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, l := range parseJSONLines(t, whole()) {
		if slices.Contains(argsOf(l), mark) {
			if pid, _ := intAttr(l, procattr.ProcessPID); pid != int64(host.Process.Pid) {
				t.Errorf("process.pid %d, want the host's %d", pid, host.Process.Pid)
			}
		}
	}
}

func TestKernelWithoutBTF(t *testing.T) {
	testenv.RequireRoot(t)
	var stderr bytes.Buffer
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs none /sys/kernel/btf && exec "$0"`, binary)
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("without BTF: %v, want exit status 1", err)
	}
	if s := stderr.String(); strings.Count(s, "\n") != 1 || !strings.Contains(s, "exposes no usable BTF") ||
		!strings.Contains(s, "Linux "+bpf.OldestKernel+" or later") {
		t.Errorf("stderr %q, want one line naming BTF and the oldest kernel", s)
	}
}
