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

	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

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
	testenv.RequireRoot(t)
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

// Each failed-exec hook this kernel accepts reports the same failed execs,
// with the exact argv; auto picks fexit exactly when the kernel takes it.
func TestFailedExecHooks(t *testing.T) {
	testenv.RequireRoot(t)
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
