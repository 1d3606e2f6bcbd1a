//go:build linux && (amd64 || arm64)

package bpf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/otelexecsnoop/execsnoop/internal/cgroup"
)

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
