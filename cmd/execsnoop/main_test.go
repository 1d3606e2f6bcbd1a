package main

import (
	"bufio"
	"bytes"
	"encoding/json"
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
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
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

var waitFor = collectortest.Timeout(10 * time.Second)

func marker() string { return fmt.Sprintf("marker-%d", time.Now().UnixNano()) }

type cli struct {
	cmd            *exec.Cmd
	stdout, stderr collectortest.SyncBuffer
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

type row struct {
	prefix          []string // TIME, TIME(s), UID as asked for
	comm            string
	pid, ppid, ret  int
	args, rawFields string
}

// rowRE matches a row after its prefix columns. PCOMM may contain spaces
// (a comm such as "tmux: server"); the rows the tests look for do not.
var rowRE = regexp.MustCompile(`^(\S+)\s+(\d+)\s+(\d+)\s+(-?\d+) (.*)$`)

func parseTable(t *testing.T, out string, prefixCols int) (header string, rows []row) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) == 0 {
		t.Fatal("no output")
	}
	for _, line := range lines[1:] {
		var prefix []string
		rest := line
		for range prefixCols {
			rest = strings.TrimLeft(rest, " ")
			i := strings.IndexByte(rest, ' ')
			if i < 0 {
				break
			}
			prefix = append(prefix, rest[:i])
			rest = rest[i:]
		}
		m := rowRE.FindStringSubmatch(strings.TrimLeft(rest, " "))
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[2])
		ppid, _ := strconv.Atoi(m[3])
		ret, _ := strconv.Atoi(m[4])
		rows = append(rows, row{prefix: prefix, comm: m[1], pid: pid, ppid: ppid, ret: ret, args: m[5], rawFields: line})
	}
	return lines[0], rows
}

func findRow(rows []row, match func(row) bool) (row, bool) {
	for _, r := range rows {
		if match(r) {
			return r, true
		}
	}
	return row{}, false
}

func TestTable(t *testing.T) {
	collectortest.RequireRoot(t)
	c := startCLI(t, "-x")
	mark := marker()
	sh := runMarked(t, "/bin/sh", "-c", "exit 3", mark)
	missing := "/nonexistent/" + mark
	if err := exec.Command(missing).Run(); err == nil {
		t.Fatalf("%s ran", missing)
	}
	code := c.stop(t)
	assertStoppedCleanly(t, c, code)

	header, rows := parseTable(t, c.stdout.String(), 0)
	if !regexp.MustCompile(`^PCOMM\s+PID\s+PPID\s+RET ARGS$`).MatchString(header) {
		t.Errorf("header %q", header)
	}
	r, ok := findRow(rows, func(r row) bool { return strings.Contains(r.args, mark) && r.ret == 0 })
	if !ok {
		t.Fatalf("no row for the marker %s in:\n%s", mark, c.stdout.String())
	}
	if r.comm != "sh" || r.pid != sh.Process.Pid || r.ppid != os.Getpid() || r.args != "/bin/sh -c exit 3 "+mark {
		t.Errorf("row %q: want sh, pid %d, ppid %d, args /bin/sh -c exit 3 %s", r.rawFields, sh.Process.Pid, os.Getpid(), mark)
	}
	r, ok = findRow(rows, func(r row) bool { return strings.Contains(r.args, missing) })
	if !ok {
		t.Fatalf("no row for the failed exec of %s (-x) in:\n%s", missing, c.stdout.String())
	}
	if r.ret != -2 || r.ppid != os.Getpid() || r.args != missing {
		t.Errorf("failed exec row %q: want RET -2, PPID %d, ARGS %s", r.rawFields, os.Getpid(), missing)
	}
}

func TestTableWithoutFailedExecs(t *testing.T) {
	collectortest.RequireRoot(t)
	c := startCLI(t)
	mark := marker()
	exec.Command("/nonexistent/" + mark).Run()
	runMarked(t, "/bin/true", mark)
	assertStoppedCleanly(t, c, c.stop(t))
	out := c.stdout.String()
	if !strings.Contains(out, "/bin/true "+mark) {
		t.Errorf("no row for /bin/true %s in:\n%s", mark, out)
	}
	if strings.Contains(out, "/nonexistent/"+mark) {
		t.Errorf("a failed exec was reported without -x:\n%s", out)
	}
}

func TestTableQuoted(t *testing.T) {
	collectortest.RequireRoot(t)
	c := startCLI(t, "-q")
	mark := marker()
	echo := exec.Command("/bin/echo", mark, "a b", "", "x\ny", "it's")
	echo.Stdout = nil
	if err := echo.Run(); err != nil {
		t.Fatal(err)
	}
	assertStoppedCleanly(t, c, c.stop(t))
	_, rows := parseTable(t, c.stdout.String(), 0)
	r, ok := findRow(rows, func(r row) bool { return strings.Contains(r.args, mark) })
	if !ok {
		t.Fatalf("no row for the marker %s in:\n%s", mark, c.stdout.String())
	}
	if r.pid != echo.Process.Pid || r.comm != "echo" {
		t.Errorf("row %q: want echo, pid %d", r.rawFields, echo.Process.Pid)
	}
	assertShellSplits(t, r.args, echo.Args)
}

func TestTableExitsAndPrefixColumns(t *testing.T) {
	collectortest.RequireRoot(t)
	c := startCLI(t, "--exits", "-T", "-t", "-U")
	mark := marker()
	sh := runMarked(t, "/bin/sh", "-c", "exit 3", mark)
	assertStoppedCleanly(t, c, c.stop(t))

	header, rows := parseTable(t, c.stdout.String(), 3)
	if !regexp.MustCompile(`^TIME\s+TIME\(s\)\s+UID\s+PCOMM\s+PID\s+PPID\s+RET ARGS$`).MatchString(header) {
		t.Errorf("header %q", header)
	}
	execRow, ok := findRow(rows, func(r row) bool { return r.pid == sh.Process.Pid && strings.Contains(r.args, mark) })
	if !ok {
		t.Fatalf("no exec row for pid %d in:\n%s", sh.Process.Pid, c.stdout.String())
	}
	if len(execRow.prefix) != 3 || !regexp.MustCompile(`^\d\d:\d\d:\d\d$`).MatchString(execRow.prefix[0]) ||
		!regexp.MustCompile(`^\d+\.\d{3}$`).MatchString(execRow.prefix[1]) || execRow.prefix[2] != strconv.Itoa(os.Geteuid()) {
		t.Errorf("prefix columns of %q", execRow.rawFields)
	}
	exitRow, ok := findRow(rows, func(r row) bool { return r.pid == sh.Process.Pid && strings.HasPrefix(r.args, "[exit") })
	if !ok {
		t.Fatalf("no exit row for pid %d in:\n%s", sh.Process.Pid, c.stdout.String())
	}
	if exitRow.comm != "sh" || exitRow.ret != 3 || exitRow.ppid != os.Getpid() ||
		!regexp.MustCompile(`^\[exit status 3 after \d+\.\d\ds, cpu \d+\.\d\ds, max rss \d+\.\d MiB\]$`).MatchString(exitRow.args) {
		t.Errorf("exit row %q: want sh, RET 3, [exit status 3 after N.NNs, cpu N.NNs, max rss N.N MiB]", exitRow.rawFields)
	}
}

// jsonLine is one --json output line.
type jsonLine struct {
	Time       string            `json:"time"`
	Event      string            `json:"event"`
	Severity   string            `json:"severity"`
	Body       string            `json:"body"`
	Resource   map[string]string `json:"resource"`
	Attributes map[string]any    `json:"attributes"`
}

func parseJSONLines(t *testing.T, out string) []jsonLine {
	t.Helper()
	var lines []jsonLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l jsonLine
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, l.Time); err != nil {
			t.Errorf("time %q: %v", l.Time, err)
		}
		if id, ok := l.Resource[procattr.ContainerID]; ok && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
			t.Errorf("container.id %q", id)
		}
		lines = append(lines, l)
	}
	return lines
}

func argsOf(l jsonLine) []string {
	arr, _ := l.Attributes[procattr.ProcessCommandArgs].([]any)
	var out []string
	for _, a := range arr {
		s, _ := a.(string)
		out = append(out, s)
	}
	return out
}

func intAttr(l jsonLine, key string) (int64, bool) {
	n, ok := l.Attributes[key].(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

// assertAttrs checks exact values, and that the keys are exactly required
// plus any of optional.
func assertAttrs(t *testing.T, l jsonLine, want map[string]any, optional ...string) {
	t.Helper()
	for k, v := range want {
		got, ok := l.Attributes[k]
		if !ok {
			t.Errorf("%s: no attribute %s", l.Event, k)
			continue
		}
		switch v := v.(type) {
		case int:
			if i, ok := intAttr(l, k); !ok || i != int64(v) {
				t.Errorf("%s: %s = %v, want %d", l.Event, k, got, v)
			}
		case []string:
			if !slices.Equal(argsOf(l), v) {
				t.Errorf("%s: %s = %v, want %q", l.Event, k, got, v)
			}
		case nil: // present, any value
		default:
			if got != v {
				t.Errorf("%s: %s = %#v, want %#v", l.Event, k, got, v)
			}
		}
	}
	for k := range l.Attributes {
		if _, ok := want[k]; !ok && !slices.Contains(optional, k) {
			t.Errorf("%s: unexpected attribute %s = %v", l.Event, k, l.Attributes[k])
		}
	}
}

func TestJSON(t *testing.T) {
	collectortest.RequireRoot(t)
	c := startCLI(t, "--json", "-x", "--exits")
	mark := marker()
	sh := runMarked(t, "/bin/sh", "-c", "exit 3", mark)
	missing := "/nonexistent/" + mark
	exec.Command(missing).Run()
	secret := runMarked(t, "/bin/true", mark, "--password=hunter2")
	assertStoppedCleanly(t, c, c.stop(t))
	lines := parseJSONLines(t, c.stdout.String())

	find := func(event string, pid int, contains string) jsonLine {
		t.Helper()
		for _, l := range lines {
			p, _ := intAttr(l, procattr.ProcessPID)
			if l.Event == event && (pid == 0 || p == int64(pid)) && slices.ContainsFunc(argsOf(l), func(a string) bool {
				return strings.Contains(a, contains)
			}) == (contains != "") {
				return l
			}
		}
		t.Fatalf("no %s record for pid %d with %q in:\n%s", event, pid, contains, c.stdout.String())
		return jsonLine{}
	}
	common := func(pid int, comm string) map[string]any {
		return map[string]any{
			procattr.ProcessPID: pid, procattr.ProcessParentPID: os.Getpid(), procattr.ProcessUserID: os.Geteuid(),
			procattr.GroupID: os.Getegid(), procattr.ThreadID: pid, procattr.ThreadName: comm,
		}
	}
	// The capabilities depend on the host's bounding set (procattr and bpf test them).
	optional := []string{procattr.ProcessLinuxCgroup, procattr.LoginUID, procattr.CapabilitiesEffective, procattr.ProcessCreationTime}

	ex := find(procattr.EventExec, sh.Process.Pid, mark)
	if ex.Severity != "INFO" || ex.Body != "/bin/sh -c 'exit 3' "+mark {
		t.Errorf("exec record %+v", ex)
	}
	want := common(sh.Process.Pid, "sh")
	for k, v := range map[string]any{
		procattr.ProcessExecutablePath: "/bin/sh", procattr.ProcessExecutableName: "sh",
		procattr.ProcessCommand: "/bin/sh", procattr.ProcessCommandArgs: []string{"/bin/sh", "-c", "exit 3", mark},
		procattr.ProcessArgsCount: 4, procattr.ExecSyscall: "execve", procattr.ExecRetval: 0,
		procattr.ProcessRealUserID: 0, procattr.ProcessSavedUserID: 0, procattr.RealGroupID: 0, procattr.SavedGroupID: 0,
		procattr.ExecID: nil, procattr.ParentExecID: nil, procattr.ProcessSessionLeaderPID: nil,
		procattr.ProcessGroupLeaderPID: nil, procattr.ProcessInteractive: nil,
	} {
		want[k] = v
	}
	// The terminal and audit session are the test runner's.
	assertAttrs(t, ex, want, append(optional, procattr.TTY, procattr.AuditSessionID)...)

	exit := find(procattr.EventExit, sh.Process.Pid, "")
	if exit.Severity != "INFO" || !regexp.MustCompile(`^sh exited with status 3 after \d+\.\d\ds$`).MatchString(exit.Body) {
		t.Errorf("exit record %+v", exit)
	}
	want = common(sh.Process.Pid, "sh")
	for k, v := range map[string]any{
		procattr.ProcessExitCode: 3, procattr.ExitStatus: 3, procattr.ProcessExitTime: nil,
		procattr.ProcessCreationTime: nil, procattr.Lifetime: nil,
		procattr.CPUTimeUser: nil, procattr.CPUTimeSystem: nil, procattr.MemoryPeak: nil,
		procattr.PagingFaultsMinor: nil, procattr.PagingFaultsMajor: nil,
		procattr.ContextSwitchesVol: nil, procattr.ContextSwitchesInvol: nil,
		procattr.ExecID: ex.Attributes[procattr.ExecID],
	} {
		want[k] = v
	}
	assertAttrs(t, exit, want, procattr.ProcessLinuxCgroup, procattr.DiskIORead, procattr.DiskIOWrite)
	if peak, _ := intAttr(exit, procattr.MemoryPeak); peak < 100<<10 {
		t.Errorf("sh's peak RSS %d bytes: not plausible", peak)
	}

	failed := find(procattr.EventExec, 0, missing)
	if failed.Severity != "WARN" || failed.Body != "exec failed (ENOENT): "+missing {
		t.Errorf("failed exec record %+v", failed)
	}
	if rv, _ := intAttr(failed, procattr.ExecRetval); rv != -2 || failed.Attributes[procattr.ErrorType] != "ENOENT" ||
		!slices.Equal(argsOf(failed), []string{missing}) {
		t.Errorf("failed exec attributes %v", failed.Attributes)
	}

	// Secrets are masked as in the receiver.
	red := find(procattr.EventExec, secret.Process.Pid, mark)
	if args := argsOf(red); len(args) != 3 || strings.Contains(args[2], "hunter2") || red.Attributes[procattr.ArgsRedacted] != true ||
		strings.Contains(red.Body, "hunter2") {
		t.Errorf("not redacted: %v %q", red.Attributes, red.Body)
	}
}

// Every byte of an awkward argv reaches --json exactly (invalid UTF-8
// escaped as \xNN), and a death by signal is reported as such.
func TestJSONArgvAndSignal(t *testing.T) {
	collectortest.RequireRoot(t)
	c := startCLI(t, "--json", "--exits")
	mark := marker()
	args := []string{"/bin/true", mark, "with space", "", "line\nbreak", "ünïcødé ✓", "\xff\xfe raw\\", ""}
	tr := runMarked(t, args[0], args[1:]...)
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil { // returns once sleep has been exec'd
		t.Fatal(err)
	}
	sleep.Process.Kill()
	sleep.Wait()
	assertStoppedCleanly(t, c, c.stop(t))
	lines := parseJSONLines(t, c.stdout.String())

	find := func(event string, pid int) jsonLine {
		t.Helper()
		for _, l := range lines {
			if p, _ := intAttr(l, procattr.ProcessPID); l.Event == event && p == int64(pid) {
				return l
			}
		}
		t.Fatalf("no %s record for pid %d in:\n%s", event, pid, c.stdout.String())
		return jsonLine{}
	}
	ex := find(procattr.EventExec, tr.Process.Pid)
	want := slices.Clone(args)
	want[6] = `\xff\xfe raw\\`
	if got := argsOf(ex); !slices.Equal(got, want) {
		t.Errorf("args %q, want %q", got, want)
	}
	if n, _ := intAttr(ex, procattr.ProcessArgsCount); n != int64(len(args)) || ex.Attributes[procattr.ArgsEscaped] != true {
		t.Errorf("exec attributes %v: want %d args, escaped", ex.Attributes, len(args))
	}

	killed := find(procattr.EventExit, sleep.Process.Pid)
	if !regexp.MustCompile(`^sleep was killed by SIGKILL after \d+\.\d\ds$`).MatchString(killed.Body) {
		t.Errorf("exit body %q", killed.Body)
	}
	if code, _ := intAttr(killed, procattr.ProcessExitCode); code != 137 || killed.Attributes[procattr.ExitSignal] != "SIGKILL" ||
		killed.Attributes[procattr.CoreDumped] != false {
		t.Errorf("exit attributes %v: want exit code 137, SIGKILL, no core", killed.Attributes)
	}
	if _, ok := killed.Attributes[procattr.ExitStatus]; ok {
		t.Errorf("a death by signal has %s", procattr.ExitStatus)
	}
}

func TestSignalsEndCleanly(t *testing.T) {
	collectortest.RequireRoot(t)
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
	collectortest.RequireRoot(t)
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

func TestOTLP(t *testing.T) {
	collector := collectortest.Binary(t)
	port, outFile := collectortest.StartSink(t, collector, "logs")
	endpoint := fmt.Sprintf("127.0.0.1:%d", port)

	c := startCLI(t, "--otlp", "--otlp-endpoint", endpoint, "--otlp-insecure", "--quiet")
	mark := marker()
	cmd := runMarked(t, "/bin/sh", "-c", "exit 0", mark)
	assertStoppedCleanly(t, c, c.stop(t))
	if s := parseOTLPSummary(t, c.stderr.String()); s.exported == 0 || s.dropped != 0 || s.notExported != 0 {
		t.Errorf("summary %q: want records exported, none dropped; stderr: %s", s.line, c.stderr.String())
	}

	wantArgs := []any{"/bin/sh", "-c", "exit 0", mark}
	deadline := time.Now().Add(waitFor)
	for {
		found := false
		collectortest.EachLogRecord(outFile, func(rl plog.ResourceLogs, sl plog.ScopeLogs, rec plog.LogRecord) {
			attr := func(k string) any { return collectortest.Attr(rec.Attributes(), k) }
			if found || rec.EventName() != procattr.EventExec || attr(procattr.ProcessPID) != int64(cmd.Process.Pid) {
				return
			}
			if args, _ := attr(procattr.ProcessCommandArgs).([]any); !slices.Equal(args, wantArgs) {
				return
			}
			found = true
			if rec.SeverityText() != "INFO" || rec.SeverityNumber() != plog.SeverityNumberInfo ||
				rec.Body().Str() != "/bin/sh -c 'exit 0' "+mark || rec.Timestamp() == 0 || rec.ObservedTimestamp() == 0 {
				t.Errorf("record %v", rec.Body().AsRaw())
			}
			if sl.Scope().Name() != scopeName {
				t.Errorf("scope %q, want %q", sl.Scope().Name(), scopeName)
			}
			res := rl.Resource().Attributes()
			if collectortest.Attr(res, "service.name") != "execsnoop" || collectortest.Attr(res, "host.name") == nil {
				t.Errorf("resource %v", res.AsRaw())
			}
			if attr(procattr.ProcessParentPID) != int64(os.Getpid()) || attr(procattr.ProcessExecutablePath) != "/bin/sh" ||
				attr(procattr.ProcessArgsCount) != int64(4) || attr(procattr.ExecSyscall) != "execve" {
				t.Errorf("attributes %v", rec.Attributes().AsRaw())
			}
		})
		if found {
			return
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(outFile)
			t.Fatalf("no exec record of pid %d with %q in the collector's output within %s:\n%.4000s",
				cmd.Process.Pid, wantArgs, waitFor, data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Without CAP_BPF and CAP_PERFMON the CLI says what to grant, on one line,
// and exits 1.
func TestMissingPrivileges(t *testing.T) {
	collectortest.RequireRoot(t) // to drop to an unprivileged user
	// The binary sits in a private temporary directory; run a copy the
	// unprivileged user can reach.
	dir, err := os.MkdirTemp("", "execsnoop-noprivs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "execsnoop")
	if out, err := exec.Command("cp", binary, bin).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin)
	cmd.Stderr = &stderr
	err = cmd.Run()
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
	collectortest.RequireRoot(t)
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
	collectortest.RequireRoot(t)
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
