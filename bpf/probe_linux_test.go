//go:build linux && (amd64 || arm64)

package bpf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/internal/cgroup"
	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
)

// The test binary doubles as a helper program: with this variable set it
// performs one exec itself, for cases os/exec cannot produce.
const helperEnv = "EXECSNOOP_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "execveat":
		os.Exit(execveatTrue())
	case "burn":
		os.Exit(burn())
	case "rusage-parent":
		os.Exit(rusageParent())
	case "setresid":
		os.Exit(setresidExec())
	case "":
		// Close must leave no reader goroutine behind.
		goleak.VerifyTestMain(m)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// execveatTrue runs /bin/true through execveat(fd, "", argv, env, AT_EMPTY_PATH).
func execveatTrue() int {
	fd, err := unix.Open("/bin/true", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 3
	}
	argv := []string{"true", "via-execveat"}
	argvp, _ := syscall.SlicePtrFromStrings(argv)
	envp, _ := syscall.SlicePtrFromStrings(nil)
	empty, _ := syscall.BytePtrFromString("")
	_, _, errno := syscall.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
	fmt.Fprintln(os.Stderr, "execveat:", errno)
	return 4
}

// recorder reads a probe in the background and keeps every event.
type recorder struct {
	probe *Probe
	mu    sync.Mutex
	evs   []Event
	done  chan error
}

func startRecorder(t *testing.T, opts Options) *recorder {
	t.Helper()
	collectortest.RequireRoot(t)
	p, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	r := &recorder{probe: p, done: make(chan error, 1)}
	go func() {
		for {
			var ev Event
			err := p.Read(&ev)
			if errors.Is(err, ErrDrained) {
				continue
			}
			if err != nil {
				r.done <- err
				return
			}
			ev.Args = slices.Clone(ev.Args)
			r.mu.Lock()
			r.evs = append(r.evs, ev)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-r.done; !errors.Is(err, ErrClosed) {
			t.Errorf("Read after Close: %v, want ErrClosed", err)
		}
	})
	return r
}

// waitFor returns the first event that matches, failing after a timeout
// long enough for any drain period.
func (r *recorder) waitFor(t *testing.T, what string, match func(*Event) bool) Event {
	t.Helper()
	wait := collectortest.Timeout(5 * time.Second)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for i := range r.evs {
			if match(&r.evs[i]) {
				ev := r.evs[i]
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s event within %s (stats %+v)", what, wait, r.probe.Stats())
	return Event{}
}

// absent checks that no event matches, after waiting for a drain.
func (r *recorder) absent(t *testing.T, what string, match func(*Event) bool) {
	t.Helper()
	time.Sleep(3 * DefaultDrainPeriod)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.evs {
		if match(&r.evs[i]) {
			t.Fatalf("unexpected %s event: %+v", what, r.evs[i])
		}
	}
}

func execOf(pid int) func(*Event) bool {
	return func(e *Event) bool { return e.Kind == KindExec && int(e.PID) == pid }
}

func exitOf(pid int) func(*Event) bool {
	return func(e *Event) bool { return e.Kind == KindExit && int(e.PID) == pid }
}

func failedExecOf(path string) func(*Event) bool {
	return func(e *Event) bool { return e.Kind == KindExec && e.Filename == path && e.Retval < 0 }
}

func run(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	_ = cmd.Run() // exit codes are what some cases test
	if cmd.Process == nil {
		t.Fatalf("%s did not start", name)
	}
	return cmd
}

var transports = []Transport{TransportRingbuf, TransportPerf}

func forEachTransport(t *testing.T, test func(t *testing.T, r *recorder)) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			r := startRecorder(t, Options{Transport: tr, Exits: true, ArgsSize: MaxArgsSize})
			if got := r.probe.Transport(); got != tr {
				t.Fatalf("transport %s, want %s", got, tr)
			}
			test(t, r)
		})
	}
}

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
		if d := time.Since(ex.Time); d < 0 || d > collectortest.Timeout(5*time.Second) {
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

func TestKernelFilters(t *testing.T) {
	t.Run("no failed execs", func(t *testing.T) {
		r := startRecorder(t, Options{FailedExecs: FailedExecsExclude})
		_ = exec.Command("/nonexistent/no-failed").Run()
		ok := run(t, "/bin/true", "no-failed")
		r.waitFor(t, "exec", execOf(ok.Process.Pid))
		r.absent(t, "failed exec", failedExecOf("/nonexistent/no-failed"))
	})
	t.Run("only failed execs", func(t *testing.T) {
		r := startRecorder(t, Options{FailedExecs: FailedExecsOnly})
		ok := run(t, "/bin/true", "only-failed")
		_ = exec.Command("/nonexistent/only-failed").Run()
		r.waitFor(t, "failed exec", failedExecOf("/nonexistent/only-failed"))
		r.absent(t, "successful exec", execOf(ok.Process.Pid))
	})
	t.Run("uid", func(t *testing.T) {
		r := startRecorder(t, Options{UIDs: []uint32{4242}})
		root := run(t, "/bin/true", "as-root")
		other := exec.Command("/bin/true", "as-4242")
		other.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4242, Gid: 4242}}
		if err := other.Run(); err != nil {
			t.Fatal(err)
		}
		ev := r.waitFor(t, "exec as uid 4242", execOf(other.Process.Pid))
		if ev.UID != 4242 || ev.GID != 4242 {
			t.Errorf("uid %d gid %d", ev.UID, ev.GID)
		}
		r.absent(t, "root's exec", execOf(root.Process.Pid))
	})
	t.Run("excluded tree", func(t *testing.T) {
		r := startRecorder(t, Options{ExcludeSelf: true})
		// Our children and grandchildren are excluded...
		mine := run(t, "/bin/true", "excluded")
		run(t, "/bin/sh", "-c", "/bin/true excluded-grandchild; true")
		// ...but not a process orphaned out of our tree before it execs.
		run(t, "/bin/sh", "-c", `/bin/sh -c "sleep 0.3; exec /bin/true escaped-tree" & exit 0`)
		r.waitFor(t, "exec outside the excluded tree", func(e *Event) bool {
			return e.Kind == KindExec && slices.Contains(e.Args, "escaped-tree")
		})
		r.absent(t, "excluded exec", execOf(mine.Process.Pid))
		r.absent(t, "excluded grandchild", func(e *Event) bool {
			return e.Kind == KindExec && slices.Contains(e.Args, "excluded-grandchild")
		})
	})
	t.Run("cgroup", func(t *testing.T) {
		cg := makeCgroup(t)
		r := startRecorder(t, Options{CgroupPath: cg})
		outside := run(t, "/bin/true", "outside-cgroup")
		inside := exec.Command("/bin/sh", "-c", "echo $$ > "+filepath.Join(cg, "cgroup.procs")+" && exec /bin/true inside-cgroup")
		if out, err := inside.CombinedOutput(); err != nil {
			t.Fatalf("moving into %s: %v %s", cg, err, out)
		}
		ev := r.waitFor(t, "exec in the cgroup", execOf(inside.Process.Pid))
		if !slices.Equal(ev.Args, []string{"/bin/true", "inside-cgroup"}) {
			t.Errorf("args %q", ev.Args)
		}
		r.absent(t, "exec outside the cgroup", execOf(outside.Process.Pid))
	})
}

// makeCgroup creates a child cgroup v2 directory, removed after the test.
func makeCgroup(t *testing.T) string {
	t.Helper()
	root, err := cgroup.V2Root()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, fmt.Sprintf("execsnoop-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("creating a test cgroup: %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) })
	return dir
}

func TestOverloadCountsLoss(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			collectortest.RequireRoot(t)
			// One page of buffer, and nobody reading during the burst.
			p, err := Open(Options{Transport: tr, BufferSize: MinBufferSize, Exits: true, DrainPeriod: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			for range 200 {
				_ = exec.Command("/bin/true", "burst").Run()
			}
			var ev Event
			for p.Read(&ev) == nil { // drain what fitted
			}
			if p.Stats().Lost() == 0 {
				t.Fatalf("no loss counted after 200 execs into one page: %+v", p.Stats())
			}
			// The reader keeps going after the loss.
			cmd := run(t, "/bin/true", "after-burst")
			deadline := time.Now().Add(collectortest.Timeout(5 * time.Second))
			for time.Now().Before(deadline) {
				err := p.Read(&ev)
				if err == nil && ev.Kind == KindExec && int(ev.PID) == cmd.Process.Pid {
					t.Logf("after the burst: %+v", p.Stats())
					return
				}
				if err != nil && !errors.Is(err, ErrDrained) {
					t.Fatal(err)
				}
			}
			t.Fatal("no event after the burst")
		})
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	collectortest.RequireRoot(t)
	p, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error)
	go func() {
		var ev Event
		for {
			if err := p.Read(&ev); !errors.Is(err, ErrDrained) && err != nil {
				readErr <- err
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Read returned %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_ = p.Stats()
}

func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Transport: "pipe"}, "transport"},
		{Options{BufferSize: 10}, "buffer size"},
		{Options{ArgsSize: MaxArgsSize + 1}, "argv size"},
		{Options{FailedExecs: "sometimes"}, "failed execs"},
		{Options{DrainPeriod: time.Hour}, "drain period"},
	} {
		_, err := Open(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v): %v, want an error naming %q", tc.opts, err, tc.want)
		}
	}
	collectortest.RequireRoot(t)
	_, err := Open(Options{CgroupPath: "/tmp"})
	if err == nil || !strings.Contains(err.Error(), "not a cgroup v2 directory") {
		t.Errorf("cgroup filter on /tmp: %v", err)
	}
}

func tracefsMounted(t *testing.T) bool {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(mounts)) {
		if fields := strings.Fields(line); len(fields) > 2 && (fields[2] == "tracefs" || fields[2] == "debugfs") {
			return true
		}
	}
	return false
}

// The probe must work where tracefs is not mounted (link.Tracepoint fails
// there). Where it is mounted, the test reruns itself in a private mount
// namespace with tracefs and debugfs unmounted.
func TestWithoutTracefs(t *testing.T) {
	collectortest.RequireRoot(t)
	if tracefsMounted(t) {
		if os.Getenv("EXECSNOOP_TEST_UNMOUNTED") != "" {
			t.Fatal("tracefs is still mounted after unmounting it")
		}
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
			`for m in /sys/kernel/debug/tracing /sys/kernel/tracing /sys/kernel/debug; do umount -l $m 2>/dev/null; done; exec "$0" -test.run '^TestWithoutTracefs$' -test.v`,
			os.Args[0])
		cmd.Env = append(os.Environ(), "EXECSNOOP_TEST_UNMOUNTED=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestWithoutTracefs") {
			t.Fatalf("in a namespace without tracefs: %v\n%s", err, out)
		}
		return
	}
	r := startRecorder(t, Options{Exits: true})
	cmd := run(t, "/bin/true", "no-tracefs")
	r.waitFor(t, "exec", execOf(cmd.Process.Pid))
	r.waitFor(t, "exit", exitOf(cmd.Process.Pid))
}

// Stop loses nothing already captured: events buffered when it is called
// are still read, then Read reports ErrClosed.
func TestStopDrainsTheBuffer(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			collectortest.RequireRoot(t)
			p, err := Open(Options{Transport: tr, DrainPeriod: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			cmd := run(t, "/bin/true", "before-stop")
			if err := p.Stop(); err != nil {
				t.Fatal(err)
			}
			found := false
			var ev Event
			for {
				err := p.Read(&ev)
				if errors.Is(err, ErrClosed) {
					break
				}
				if err != nil && !errors.Is(err, ErrDrained) {
					t.Fatal(err)
				}
				found = found || err == nil && int(ev.PID) == cmd.Process.Pid
			}
			if !found {
				t.Fatal("the event buffered before Stop was not read")
			}
		})
	}
}

// Each failed-exec hook this kernel accepts reports the same failed execs,
// with the exact argv; auto picks fexit exactly when the kernel takes it.
func TestFailedExecHooks(t *testing.T) {
	collectortest.RequireRoot(t)
	missing := filepath.Join(t.TempDir(), "missing")
	many := []string{"a b", "", "x\ny", "\xff", "ünï"}
	for i := range 300 {
		many = append(many, fmt.Sprint("arg", i))
	}
	many = append(many, "")
	fexitOK := false
	for _, hook := range []FailedExecHook{HookFexit, HookSysExit} {
		t.Run(string(hook), func(t *testing.T) {
			p, err := Open(Options{FailedExecs: FailedExecsOnly, FailedExecHook: hook, ArgsSize: MaxArgsSize})
			if hook == HookFexit && err != nil {
				if !strings.Contains(err.Error(), "use the sys_exit failed-exec hook") {
					t.Fatalf("fexit refused without saying what to do: %v", err)
				}
				// The kernel refusing fexit is not a MEMLOCK problem:
				// the library's generic EPERM hint must not reach users.
				if !strings.Contains(err.Error(), "refused an fexit program on ") || strings.Contains(err.Error(), "MEMLOCK") {
					t.Fatalf("fexit refusal not said in our words: %v", err)
				}
				t.Skipf("this kernel refuses fexit (make test-kernels runs this on kernels that take it): %v", err)
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			p.Close()
			if hook == HookFexit {
				fexitOK = true
			}
			r := startRecorder(t, Options{FailedExecs: FailedExecsOnly, FailedExecHook: hook, ArgsSize: MaxArgsSize})
			if got := r.probe.KernelReport().FailedExecHook; got != hook {
				t.Fatalf("report says hook %q, want %q", got, hook)
			}
			if err := exec.Command(missing, many...).Run(); err == nil {
				t.Fatal("a missing program ran")
			}
			ev := r.waitFor(t, "failed exec", failedExecOf(missing))
			want := append([]string{missing}, many...)
			if ev.Retval != -int32(unix.ENOENT) || ev.Syscall != SyscallExecve || ev.ArgsTruncated ||
				!slices.Equal(ev.Args, want) || int(ev.Argc) != len(want) {
				t.Errorf("retval %d syscall %s truncated %v argc %d args %q, want ENOENT execve, %q",
					ev.Retval, ev.Syscall, ev.ArgsTruncated, ev.Argc, ev.Args, want)
			}
		})
	}
	r := startRecorder(t, Options{})
	want := HookSysExit
	if fexitOK {
		want = HookFexit
	}
	report := r.probe.KernelReport()
	t.Logf("auto: %s", report)
	if report.FailedExecHook != want || report.Kernel == "" || report.Transport != TransportRingbuf {
		t.Errorf("auto chose %+v, want hook %s on the ring buffer", report, want)
	}
	if line := report.String(); strings.Contains(line, "MEMLOCK") || (!fexitOK && !strings.Contains(line, "no fexit: the kernel refused an fexit program on ")) {
		t.Errorf("start-up line does not say in our words why there is no fexit: %s", line)
	}
}

// An idle ring-buffer reader blocks until the first record instead of
// waking every drain period, and that record is read at once rather than
// at the end of a period.
func TestIdleRingBufferWaitsForData(t *testing.T) {
	collectortest.RequireRoot(t)
	cg := makeCgroup(t) // empty: nothing passes the filter until we move in
	// readAll opens a probe of the empty cgroup and reads it in the
	// background until the test ends, counting drains.
	readAll := func(t *testing.T, period time.Duration) (<-chan Event, *atomic.Int64) {
		p, err := Open(Options{Transport: TransportRingbuf, CgroupPath: cg, DrainPeriod: period})
		if err != nil {
			t.Fatal(err)
		}
		drains := new(atomic.Int64)
		events := make(chan Event, 16)
		go func() {
			defer close(events)
			for {
				var ev Event
				err := p.Read(&ev)
				switch {
				case errors.Is(err, ErrDrained):
					drains.Add(1)
				case err != nil:
					return
				default:
					ev.Args = slices.Clone(ev.Args)
					events <- ev
				}
			}
		}()
		t.Cleanup(func() {
			p.Close()
			for range events {
			}
		})
		return events, drains
	}
	execInCgroup := func() *exec.Cmd {
		cmd := exec.Command("/bin/sh", "-c", "echo $$ > "+filepath.Join(cg, "cgroup.procs")+" && exec /bin/true idle-reader")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("moving into %s: %v %s", cg, err, out)
		}
		return cmd
	}
	waitForExec := func(events <-chan Event, pid int, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case ev := <-events:
				if execOf(pid)(&ev) {
					return
				}
			case <-deadline:
				t.Fatalf("the exec was not read within %s", within)
			}
		}
	}

	t.Run("no drains while idle", func(t *testing.T) {
		const period = 10 * time.Millisecond
		events, drains := readAll(t, period)
		// Not a synchronisation: a window of 50 periods in which a
		// reader on a timer would drain about 50 times.
		time.Sleep(50 * period)
		if n := drains.Load(); n > 1 {
			t.Fatalf("%d drains in %s with nothing to read, want none", n, 50*period)
		}
		waitForExec(events, execInCgroup().Process.Pid, collectortest.Timeout(5*time.Second))
	})
	t.Run("first record without waiting for the period", func(t *testing.T) {
		events, _ := readAll(t, MaxDrainPeriod)
		// A reader on a timer would read it only when the 10 s period ends.
		waitForExec(events, execInCgroup().Process.Pid, MaxDrainPeriod/2)
	})
}
