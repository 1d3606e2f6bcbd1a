//go:build linux && (amd64 || arm64)

package bpf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

func TestExitStatus(t *testing.T) {
	forEachTransport(t, func(t *testing.T, r *recorder) {
		cmd := run(t, "/bin/sh", "-c", "exit 7")
		pid := cmd.Process.Pid
		ex := r.waitFor(t, "exec", execOf(pid))
		if want := []string{"/bin/sh", "-c", "exit 7"}; !slices.Equal(ex.Args, want) || ex.Argc != 3 {
			t.Errorf("args %q argc %d, want %q", ex.Args, ex.Argc, want)
		}
		if ex.Filename != "/bin/sh" || ex.Comm != "sh" || ex.Retval != 0 || ex.Syscall != SyscallExecve {
			t.Errorf("exec event %+v", ex)
		}
		if ex.PPID != uint32(os.Getpid()) || ex.UID != 0 || ex.GID != 0 {
			t.Errorf("ppid %d uid %d gid %d, want %d 0 0", ex.PPID, ex.UID, ex.GID, os.Getpid())
		}
		if d := time.Since(ex.Time); d < 0 || d > testenv.Timeout(5*time.Second) {
			t.Errorf("exec time %v is %v from now", ex.Time, d)
		}
		exit := r.waitFor(t, "exit", exitOf(pid))
		if exit.ExitStatus() != 7 || exit.Signal() != 0 || exit.CoreDumped() || exit.ShellExitCode() != 7 {
			t.Errorf("exit code %#x: status %d signal %d", exit.ExitCode, exit.ExitStatus(), exit.Signal())
		}
		if exit.Comm != "sh" || exit.PPID != uint32(os.Getpid()) || exit.Lifetime() <= 0 || exit.CgroupID == 0 {
			t.Errorf("exit event %+v (lifetime %v)", exit, exit.Lifetime())
		}
	})
}

func TestArgvExact(t *testing.T) {
	long := strings.Repeat("x", 3000)
	args := []string{"with space", "", `"quoted" 'single'`, "line\nbreak", "ünïcødé ✓", "\xff\xfe\x01raw", long}
	for i := range 100 {
		args = append(args, fmt.Sprint(i))
	}
	args = append(args, "") // a trailing empty argument
	forEachTransport(t, func(t *testing.T, r *recorder) {
		cmd := run(t, "/bin/true", args...)
		ev := r.waitFor(t, "exec", execOf(cmd.Process.Pid))
		want := append([]string{"/bin/true"}, args...)
		if !slices.Equal(ev.Args, want) {
			t.Fatalf("args differ:\n got %q\nwant %q", ev.Args, want)
		}
		if int(ev.Argc) != len(want) || ev.ArgsTruncated {
			t.Errorf("argc %d truncated %v, want %d false", ev.Argc, ev.ArgsTruncated, len(want))
		}
	})
}

func TestExecveat(t *testing.T) {
	// Before any probe: exit 4 is the kernel refusing the syscall itself,
	// which no tracer causes (Debian 11's arm64 5.10 answers ENOENT).
	first := exec.Command(os.Args[0])
	first.Env = append(os.Environ(), helperEnv+"=execveat")
	if out, err := first.CombinedOutput(); err != nil && first.ProcessState != nil && first.ProcessState.ExitCode() == 4 {
		t.Skipf("this kernel refuses execveat(fd of /bin/true, \"\", AT_EMPTY_PATH): %s", strings.TrimSpace(string(out)))
	}
	forEachTransport(t, func(t *testing.T, r *recorder) {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=execveat")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("execveat helper: %v %s", err, out)
		}
		ev := r.waitFor(t, "execveat", func(e *Event) bool {
			return execOf(cmd.Process.Pid)(e) && slices.Equal(e.Args, []string{"true", "via-execveat"})
		})
		if !strings.HasPrefix(ev.Filename, "/dev/fd/") {
			t.Errorf("filename %q, want the kernel's /dev/fd/N name", ev.Filename)
		}
		// Linux 6.14 names the process after the file (/bin/true), older
		// kernels after the last element of /dev/fd/N.
		if fd := strings.TrimPrefix(ev.Filename, "/dev/fd/"); ev.Syscall != SyscallExecveat || ev.Comm != "true" && ev.Comm != fd {
			t.Errorf("event %+v: want execveat, comm true or %s", ev, fd)
		}
	})
}

func TestFailedExecs(t *testing.T) {
	dir := t.TempDir()
	notExecutable := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExecutable, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noFormat := filepath.Join(dir, "no-format") // executable, but neither ELF nor #!
	if err := os.WriteFile(noFormat, []byte("\x00\x01 not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	forEachTransport(t, func(t *testing.T, r *recorder) {
		for _, tc := range []struct {
			path   string
			retval int32
		}{{missing, -int32(unix.ENOENT)}, {notExecutable, -int32(unix.EACCES)}, {noFormat, -int32(unix.ENOEXEC)}} {
			if err := exec.Command(tc.path, "arg one", "").Run(); err == nil {
				t.Fatalf("%s ran", tc.path)
			}
			ev := r.waitFor(t, "failed exec", failedExecOf(tc.path))
			if ev.Retval != tc.retval || !ev.Failed() || ev.Syscall != SyscallExecve {
				t.Errorf("%s: retval %d, want %d", tc.path, ev.Retval, tc.retval)
			}
			if want := []string{tc.path, "arg one", ""}; !slices.Equal(ev.Args, want) || ev.Argc != 3 {
				t.Errorf("%s: args %q argc %d (unreadable %v, truncated %v), want %q", tc.path, ev.Args, ev.Argc, ev.ArgsUnreadable, ev.ArgsTruncated, want)
			}
		}
	})
}

func TestKilledBySignal(t *testing.T) {
	forEachTransport(t, func(t *testing.T, r *recorder) {
		cmd := exec.Command("sleep", "5")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		ev := r.waitFor(t, "exit", exitOf(cmd.Process.Pid))
		if ev.Signal() != int(unix.SIGKILL) || ev.ShellExitCode() != 137 || ev.Lifetime() < 40*time.Millisecond {
			t.Errorf("signal %d exit code %d lifetime %v", ev.Signal(), ev.ShellExitCode(), ev.Lifetime())
		}
	})
}

func TestWallClock(t *testing.T) {
	r := startRecorder(t, Options{})
	before := time.Now()
	cmd := run(t, "/bin/true", "clock")
	after := time.Now()
	ev := r.waitFor(t, "exec", execOf(cmd.Process.Pid))
	if ev.Time.Before(before.Add(-50*time.Millisecond)) || ev.Time.After(after.Add(50*time.Millisecond)) {
		t.Errorf("event time %v outside [%v, %v] with 50ms slack", ev.Time, before, after)
	}
}

func TestArgsBudget(t *testing.T) {
	r := startRecorder(t, Options{ArgsSize: 64, MaxArgs: 3})
	cmd := run(t, "/bin/true", strings.Repeat("a", 100), "b")
	ev := r.waitFor(t, "exec", execOf(cmd.Process.Pid))
	if !ev.ArgsTruncated || ev.Argc != 3 {
		t.Fatalf("truncated %v argc %d, want true 3", ev.ArgsTruncated, ev.Argc)
	}
	joined := strings.Join(ev.Args, "\x00")
	if len(joined) > 64 || ev.Args[0] != "/bin/true" {
		t.Errorf("args %q exceed the 64-byte budget", ev.Args)
	}
	cmd = run(t, "/bin/true", "1", "2", "3", "4")
	ev = r.waitFor(t, "exec", execOf(cmd.Process.Pid))
	if !slices.Equal(ev.Args, []string{"/bin/true", "1", "2"}) || !ev.ArgsTruncated || ev.Argc != 5 {
		t.Errorf("args %q truncated %v argc %d, want 3 args kept of 5", ev.Args, ev.ArgsTruncated, ev.Argc)
	}
}
