package procattr

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/redact"
)

func TestQuoteArgsRoundTripsThroughAShell(t *testing.T) {
	args := []string{"plain", "", "with space", "it's", `back\slash`, "line\nbreak", "tab\there",
		"ünïcødé ✓", "\xff\xfe raw", "$HOME", "*", "a=b", "--flag=x", "\x01\x7f"}
	line := QuoteArgs(args)
	out, err := exec.Command("bash", "-c", `printf '%s\0' `+line).Output()
	if err != nil {
		t.Fatalf("bash: %v (line %s)", err, line)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !slices.Equal(got, args) {
		t.Fatalf("round trip through bash:\n line %s\n got %q\nwant %q", line, got, args)
	}
	if QuoteArgs([]string{"ls", "-l", "/tmp"}) != "ls -l /tmp" {
		t.Errorf("plain words quoted: %s", QuoteArgs([]string{"ls", "-l", "/tmp"}))
	}
}

var start = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func TestExecAttributes(t *testing.T) {
	ev := &bpf.Event{Kind: bpf.KindExec, PID: 10, TID: 10, PPID: 1, UID: 1000, GID: 100, Comm: "ls",
		Filename: "/usr/bin/ls", Args: []string{"ls", "-l", ""}, Argc: 3, Syscall: bpf.SyscallExecve,
		LoginUID: 1000, Time: start.Add(time.Second), StartTime: start, RealUID: 1001, SavedUID: 1002, RealGID: 101,
		SavedGID: 102, Image: bpf.Image{PID: 10, StartBootNs: 5, ExecSeq: 2}, ParentImage: bpf.Image{PID: 1, StartBootNs: 1, ExecSeq: 1},
		SessionID: 8, PGID: 9, VPID: 10, AuditSessionID: ^uint32(0), TTYIndex: -1,
		Cwd: "/home/u", Executable: bpf.Executable{Valid: true, Path: "/usr/bin/ls", Links: 1}}
	got := MapSink{}
	(&Mapper{}).Attributes(ev, got)
	want := MapSink{
		ProcessPID: int64(10), ProcessParentPID: int64(1), ProcessUserID: int64(1000), GroupID: int64(100),
		ThreadID: int64(10), ThreadName: "ls", ProcessExecutablePath: "/usr/bin/ls", ProcessExecutableName: "ls",
		ExecFilename: "/usr/bin/ls", ProcessWorkingDirectory: "/home/u", ExecutableMemfd: false, ExecutableDeleted: false,
		ProcessCommand: "ls", ProcessCommandArgs: []string{"ls", "-l", ""}, ProcessArgsCount: int64(3),
		ExecSyscall: "execve", ExecRetval: int64(0), LoginUID: int64(1000),
		ProcessCreationTime: "2026-11-25T10:00:00Z", ProcessRealUserID: int64(1001), ProcessSavedUserID: int64(1002),
		RealGroupID: int64(101), SavedGroupID: int64(102),
		ExecID: ExecIDOf(ev.Image), ParentExecID: ExecIDOf(ev.ParentImage),
		ProcessSessionLeaderPID: int64(8), ProcessGroupLeaderPID: int64(9), ProcessInteractive: false,
	}
	assertAttrs(t, got, want)
	if EventName(ev) != EventExec || SeverityOf(ev) != SeverityInfo || (&Mapper{}).Body(ev) != "ls -l ''" {
		t.Errorf("name %s severity %v body %q", EventName(ev), SeverityOf(ev), (&Mapper{}).Body(ev))
	}

	ev.Retval, ev.Args, ev.Argc, ev.ArgsTruncated, ev.LoginUID = -2, []string{"nope"}, 1, true, ^uint32(0)
	ev.Filename, ev.Executable = "nope", bpf.Executable{}
	got = MapSink{}
	(&Mapper{}).Attributes(ev, got)
	if got[ErrorType] != "ENOENT" || got[ExecRetval] != int64(-2) || got[ArgsTruncated] != true || got[LoginUID] != nil {
		t.Errorf("failed exec attributes %v", got)
	}
	// A failed exec ran nothing: the name passed, no executable.
	if got[ExecFilename] != "nope" || got[ProcessExecutablePath] != nil || got[ProcessExecutableName] != nil || got[ExecutableMemfd] != nil {
		t.Errorf("failed exec attributes %v", got)
	}
	if SeverityOf(ev) != SeverityWarn || (&Mapper{}).Body(ev) != "exec failed (ENOENT): nope" {
		t.Errorf("severity %v body %q", SeverityOf(ev), (&Mapper{}).Body(ev))
	}
}

func TestExitAttributes(t *testing.T) {
	exited := &bpf.Event{Kind: bpf.KindExit, PID: 10, PPID: 1, Comm: "sleep", ExitCode: 3 << 8,
		StartTime: start, Time: start.Add(1200 * time.Millisecond)}
	got := MapSink{}
	(&Mapper{}).Attributes(exited, got)
	if got[ProcessExitCode] != int64(3) || got[ExitStatus] != int64(3) || got[Lifetime] != 1.2 ||
		got[ProcessCreationTime] != "2026-11-25T10:00:00Z" || got[ProcessExitTime] != "2026-11-25T10:00:01.2Z" {
		t.Errorf("exit attributes %v", got)
	}
	if (&Mapper{}).Body(exited) != "sleep exited with status 3 after 1.20s" {
		t.Errorf("body %q", (&Mapper{}).Body(exited))
	}
	killed := *exited
	killed.ExitCode = 9 | 0x80
	got = MapSink{}
	(&Mapper{}).Attributes(&killed, got)
	if got[ProcessExitCode] != int64(137) || got[ExitSignal] != "SIGKILL" || got[CoreDumped] != true || got[ExitStatus] != nil {
		t.Errorf("killed attributes %v", got)
	}
	if (&Mapper{}).Body(&killed) != "sleep was killed by SIGKILL after 1.20s (core dumped)" {
		t.Errorf("body %q", (&Mapper{}).Body(&killed))
	}
}

func assertAttrs(t *testing.T, got, want MapSink) {
	t.Helper()
	for k, v := range want {
		if !equal(got[k], v) {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected attribute %s = %#v", k, got[k])
		}
	}
}

func equal(a, b any) bool {
	as, ok1 := a.([]string)
	bs, ok2 := b.([]string)
	if ok1 && ok2 {
		return slices.Equal(as, bs)
	}
	return a == b
}

func TestRedaction(t *testing.T) {
	r, err := redact.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &Mapper{Redactor: r}
	ev := &bpf.Event{Kind: bpf.KindExec, Filename: "/usr/bin/tool",
		Args: []string{"tool", "--password=hunter2", "https://u:secret@host"}}
	got := MapSink{}
	m.Attributes(ev, got)
	if !slices.Equal(got[ProcessCommandArgs].([]string), []string{"tool", "--password=****", "https://u:****@host"}) || got[ArgsRedacted] != true {
		t.Errorf("redacted attributes %v", got)
	}
	if body := m.Body(ev); strings.Contains(body, "hunter2") || strings.Contains(body, "secret") {
		t.Errorf("body leaks a secret: %s", body)
	}
	if ev.Args[1] != "--password=hunter2" {
		t.Error("redaction changed the event itself")
	}
}

// unescape inverts EscapeInvalidUTF8 for the losslessness check.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] == '\\' {
			b.WriteByte('\\')
			i++
		} else if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			var c byte
			fmt.Sscanf(s[i+2:i+4], "%02x", &c)
			b.WriteByte(c)
			i += 3
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// Any argv, every byte value included, maps to valid UTF-8 attributes from
// which the original bytes can be recovered; the mapping never panics.
func FuzzAttributes(f *testing.F) {
	f.Add("plain", "\xff\xfe\\x", "--password=hunter2")
	f.Add("", "\x00\x01\x7f\x80", strings.Repeat("é", 100))
	r, _ := redact.New(nil)
	m := &Mapper{Redactor: r}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		ev := &bpf.Event{Kind: bpf.KindExec, Filename: a, Comm: b, Args: []string{a, b, c}, Argc: 3}
		got := MapSink{}
		m.Attributes(ev, got)
		_ = m.Body(ev)
		args := got[ProcessCommandArgs].([]string)
		for i, arg := range args {
			if !utf8.ValidString(arg) {
				t.Fatalf("argument %d is not UTF-8: %q", i, arg)
			}
			if got[ArgsRedacted] == nil && unescape(arg) != ev.Args[i] && got[ArgsEscaped] == true {
				t.Fatalf("argument %d: %q does not unescape to %q", i, arg, ev.Args[i])
			}
		}
		for k, v := range got {
			if s, ok := v.(string); ok && !utf8.ValidString(s) {
				t.Fatalf("%s is not UTF-8: %q", k, s)
			}
		}
	})
}

func TestRusageAttributes(t *testing.T) {
	ev := &bpf.Event{Kind: bpf.KindExit, PID: 10, PPID: 1, Comm: "make", ExitCode: 9, StartTime: start,
		Time: start.Add(time.Second), CgroupID: 0, Rusage: bpf.Rusage{Valid: true, UserCPU: 1500 * time.Millisecond,
			SystemCPU: 250 * time.Millisecond, MaxRSS: 64 << 20, MinorFaults: 1000, MajorFaults: 2,
			VoluntaryCtxSwitches: 30, InvoluntaryCtxSwitches: 4, IOAccounted: true, ReadBytes: 4096, WriteBytes: 8192,
			ThreadsCut: true}}
	got := MapSink{}
	(&Mapper{}).Attributes(ev, got)
	want := MapSink{CPUTimeUser: 1.5, CPUTimeSystem: 0.25, MemoryPeak: int64(64 << 20), PagingFaultsMinor: int64(1000),
		PagingFaultsMajor: int64(2), ContextSwitchesVol: int64(30), ContextSwitchesInvol: int64(4),
		DiskIORead: int64(4096), DiskIOWrite: int64(8192), RusageThreadsTruncated: true}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	// The most attributes any event has: an exit killed by a signal, in a
	// cgroup, with every value (one more for process.linux.cgroup).
	if len(got)+1 > MaxAttributes {
		t.Errorf("%d attributes, MaxAttributes is %d", len(got)+1, MaxAttributes)
	}
	ev.Rusage.IOAccounted = false
	got = MapSink{}
	(&Mapper{}).Attributes(ev, got)
	if _, ok := got[DiskIORead]; ok {
		t.Error("storage I/O attributes where the kernel does not account it")
	}
	ev.Rusage = bpf.Rusage{}
	got = MapSink{}
	(&Mapper{}).Attributes(ev, got)
	if _, ok := got[CPUTimeUser]; ok {
		t.Error("resource usage attributes without resource usage")
	}
}
