package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

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
	testenv.RequireRoot(t)
	// The wait bound is long so that a busy machine cannot time a hash out.
	c := startCLI(t, "--json", "-x", "--exits", "--executable-file", "--hash-max-wait", "30s")
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
	// The executable is the file the kernel runs, /bin/sh's target (on an
	// overlayfs root it also has upper_layer).
	shPath, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	var shStat unix.Stat_t
	if err := unix.Stat(shPath, &shStat); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	wd, _ = filepath.EvalSymlinks(wd)

	ex := find(procattr.EventExec, sh.Process.Pid, mark)
	if ex.Severity != "INFO" || ex.Body != "/bin/sh -c 'exit 3' "+mark {
		t.Errorf("exec record %+v", ex)
	}
	want := common(sh.Process.Pid, "sh")
	for k, v := range map[string]any{
		procattr.ProcessExecutablePath: shPath, procattr.ProcessExecutableName: filepath.Base(shPath),
		procattr.ExecFilename: "/bin/sh", procattr.ProcessWorkingDirectory: wd,
		procattr.ExecutableMemfd: false, procattr.ExecutableDeleted: false,
		procattr.ExecutableInode: int(shStat.Ino), procattr.ExecutableOwnerID: int(shStat.Uid),
		procattr.ExecutableMode: procattr.FileMode(shStat.Mode), procattr.ExecutableChanged: nil,
		procattr.ExecutableModified: time.Unix(shStat.Mtim.Unix()).UTC().Format(time.RFC3339Nano),
		procattr.ProcessCommand:     "/bin/sh", procattr.ProcessCommandArgs: []string{"/bin/sh", "-c", "exit 3", mark},
		procattr.ProcessArgsCount: 4, procattr.ExecSyscall: "execve", procattr.ExecRetval: 0,
		procattr.ProcessRealUserID: 0, procattr.ProcessSavedUserID: 0, procattr.RealGroupID: 0, procattr.SavedGroupID: 0,
		procattr.ExecID: nil, procattr.ParentExecID: nil, procattr.ProcessSessionLeaderPID: nil,
		procattr.ProcessGroupLeaderPID: nil, procattr.ProcessInteractive: nil,
		procattr.ExecutableHashSHA256: testenv.FileSHA256(t, shPath), procattr.ExecutableBuildIDHTL: nil,
		// The test started before the CLI: its parent came from /proc.
		procattr.ParentSource: "procfs", procattr.ParentExecutablePath: testenv.ProcExe(os.Getpid()),
		procattr.ParentCommandArgs: nil, procattr.AncestorsPID: nil, procattr.AncestorsExecutableName: nil,
	} {
		want[k] = v
	}
	// The terminal and audit session are the test runner's.
	assertAttrs(t, ex, want, append(optional, procattr.TTY, procattr.AuditSessionID, procattr.ExecutableUpperLayer,
		procattr.ExecutableBuildIDGNU)...)
	if !regexp.MustCompile(`(?m)^execsnoop: executables: [1-9]\d* records hashed \([1-9]\d* files read\)`).MatchString(c.stderr.String()) {
		t.Errorf("no summary of the hashes in:\n%s", c.stderr.String())
	}

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
		!slices.Equal(argsOf(failed), []string{missing}) || failed.Attributes[procattr.ExecFilename] != missing ||
		failed.Attributes[procattr.ProcessExecutablePath] != nil || failed.Attributes[procattr.ExecutableInode] != nil {
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
	testenv.RequireRoot(t)
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

// --no-hash: no identity attributes, no summary line.
func TestJSONNoHash(t *testing.T) {
	testenv.RequireRoot(t)
	c := startCLI(t, "--json", "--no-hash")
	mark := marker()
	tr := runMarked(t, "/bin/true", mark)
	assertStoppedCleanly(t, c, c.stop(t))
	found := false
	for _, l := range parseJSONLines(t, c.stdout.String()) {
		if p, _ := intAttr(l, procattr.ProcessPID); l.Event != procattr.EventExec || p != int64(tr.Process.Pid) {
			continue
		}
		found = true
		for _, k := range []string{procattr.ExecutableHashSHA256, procattr.ExecutableHashMissing, procattr.ExecutableBuildIDGNU, procattr.ExecutableBuildIDHTL} {
			if v, ok := l.Attributes[k]; ok {
				t.Errorf("--no-hash, and the record has %s = %v", k, v)
			}
		}
	}
	if !found {
		t.Fatalf("no exec record of /bin/true:\n%s", c.stdout.String())
	}
	if strings.Contains(c.stderr.String(), "executables:") {
		t.Errorf("--no-hash, and a hash summary:\n%s", c.stderr.String())
	}
}
