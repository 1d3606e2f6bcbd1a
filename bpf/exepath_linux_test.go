//go:build linux && (amd64 || arm64)

package bpf

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// helperArgEnv passes a path to the helpers below.
const helperArgEnv = "EXECSNOOP_TEST_HELPER_ARG"

// fexecve runs the open file fd as "payload" through
// execveat(fd, "", AT_EMPTY_PATH); it returns only on failure.
func fexecve(fd int) int {
	argvp, _ := syscall.SlicePtrFromStrings([]string{"payload"})
	envp, _ := syscall.SlicePtrFromStrings(nil)
	empty, _ := syscall.BytePtrFromString("")
	_, _, errno := syscall.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
	os.Stderr.WriteString("execveat: " + errno.Error() + "\n")
	return 4
}

// memfdExec copies /bin/true into a memfd and executes it: a fileless exec.
func memfdExec() int {
	fd, err := unix.MemfdCreate("payload", 0)
	if err != nil {
		return 3
	}
	src, err := os.Open("/bin/true")
	if err != nil {
		return 3
	}
	if _, err := io.Copy(os.NewFile(uintptr(fd), "memfd"), src); err != nil {
		return 3
	}
	return fexecve(fd)
}

// unlinkedExec opens the executable at path, removes it and executes the
// open file: a binary deleted before its exec.
func unlinkedExec(path string) int {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil || os.Remove(path) != nil {
		return 3
	}
	return fexecve(fd)
}

// payloadOf matches the exec of the helpers' payload by pid.
func payloadOf(pid int) func(*Event) bool {
	return func(e *Event) bool { return execOf(pid)(e) && len(e.Args) == 1 && e.Args[0] == "payload" }
}

func runHelper(t *testing.T, name, arg string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+name, helperArgEnv+"="+arg)
	if out, err := cmd.CombinedOutput(); err != nil {
		// fexecve's exit 4: the kernel refused execveat itself, which no
		// tracer causes (Debian 11's arm64 5.10 answers ENOENT).
		if cmd.ProcessState.ExitCode() == 4 && strings.HasPrefix(string(out), "execveat: ") {
			t.Skipf("this kernel refuses execveat(fd, \"\", AT_EMPTY_PATH) of the %s helper: %s", name, strings.TrimSpace(string(out)))
		}
		t.Fatalf("%s helper: %v %s", name, err, out)
	}
	return cmd
}

// copyTrue copies /bin/true to path, executable.
func copyTrue(t *testing.T, path string) { testenv.CopyFile(t, "/bin/true", path, 0o755) }

// realDir is t.TempDir with its symlinks resolved, as the kernel names it.
func realDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func resolved(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func runIn(t *testing.T, dir, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s in %s: %v %s", name, dir, err, out)
	}
	return cmd
}

func TestExecutableFile(t *testing.T) {
	r := startRecorder(t, Options{})
	cmd := run(t, "/bin/true")
	ev := r.waitFor(t, "exec", execOf(cmd.Process.Pid))
	x := ev.Executable
	// Debian 12: /bin is a symlink to usr/bin.
	if want := resolved(t, "/bin/true"); x.Path != want || ev.Filename != "/bin/true" || x.PathCut {
		t.Errorf("path %q (cut %v) filename %q, want %q and /bin/true", x.Path, x.PathCut, ev.Filename, want)
	}
	var st unix.Stat_t
	if err := unix.Stat("/bin/true", &st); err != nil {
		t.Fatal(err)
	}
	if !x.Valid || x.Memfd || x.Deleted || x.Script || x.Inode != st.Ino || x.Mode != st.Mode ||
		x.Links != uint32(st.Nlink) || x.OwnerUID != st.Uid || x.FSMagic == 0 || x.StatDev() != st.Dev {
		t.Errorf("executable %+v, want stat's %+v", x, st)
	}
	if want := time.Unix(st.Mtim.Unix()); !x.Modified.Equal(want) {
		t.Errorf("modified %v, want %v", x.Modified, want)
	}
	if want := time.Unix(st.Ctim.Unix()); !x.Changed.Equal(want) {
		t.Errorf("changed %v, want %v", x.Changed, want)
	}
	if wd, _ := os.Getwd(); ev.Cwd != resolved(t, wd) || ev.CwdCut {
		t.Errorf("cwd %q (cut %v), want %q", ev.Cwd, ev.CwdCut, wd)
	}
}

func TestExecutableRelativeAndSymlink(t *testing.T) {
	dir := realDir(t)
	copyTrue(t, filepath.Join(dir, "x"))
	if err := os.Symlink("/bin/true", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	r := startRecorder(t, Options{})

	cmd := runIn(t, dir, "./x")
	ev := r.waitFor(t, "exec ./x", execOf(cmd.Process.Pid))
	if ev.Executable.Path != dir+"/x" || ev.Filename != "./x" || ev.Cwd != dir {
		t.Errorf("./x: path %q filename %q cwd %q, want %s/x ./x %s", ev.Executable.Path, ev.Filename, ev.Cwd, dir, dir)
	}
	cmd = runIn(t, "/", filepath.Join(dir, "link"))
	ev = r.waitFor(t, "exec link", execOf(cmd.Process.Pid))
	if want := resolved(t, "/bin/true"); ev.Executable.Path != want || ev.Cwd != "/" {
		t.Errorf("symlink: path %q cwd %q, want its target %s and /", ev.Executable.Path, ev.Cwd, want)
	}
}

func TestExecutableScript(t *testing.T) {
	dir := realDir(t)
	if err := os.WriteFile(filepath.Join(dir, "s.sh"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := startRecorder(t, Options{})
	cmd := runIn(t, dir, "./s.sh")
	ev := r.waitFor(t, "script exec", execOf(cmd.Process.Pid))
	if want := resolved(t, "/bin/sh"); ev.Executable.Path != want || !ev.Executable.Script || ev.Filename != "./s.sh" {
		t.Errorf("script: path %q script %v filename %q, want the interpreter %s, true, ./s.sh",
			ev.Executable.Path, ev.Executable.Script, ev.Filename, want)
	}
}

func TestExecutableMemfd(t *testing.T) {
	r := startRecorder(t, Options{})
	cmd := runHelper(t, "memfd", "")
	ev := r.waitFor(t, "memfd exec", payloadOf(cmd.Process.Pid))
	x := ev.Executable
	if !x.Memfd || x.Deleted || x.Path != "/memfd:payload" {
		t.Errorf("memfd exec: %+v, want memfd, not deleted, /memfd:payload", x)
	}
}

func TestExecutableUnlinked(t *testing.T) {
	dir := realDir(t)
	path := filepath.Join(dir, "gone")
	copyTrue(t, path)
	r := startRecorder(t, Options{})
	cmd := runHelper(t, "unlinked", path)
	ev := r.waitFor(t, "unlinked exec", payloadOf(cmd.Process.Pid))
	x := ev.Executable
	if !x.Deleted || x.Memfd || x.Path != path || x.Links != 0 {
		t.Errorf("unlinked exec: %+v, want deleted, not memfd, path %s", x, path)
	}
}

func TestExecutableOverlayLayer(t *testing.T) {
	base, merged := testenv.Overlay(t, func(lower string) { copyTrue(t, filepath.Join(lower, "image-bin")) })
	copyTrue(t, filepath.Join(merged, "dropped-bin"))

	r := startRecorder(t, Options{})
	lower := runIn(t, "/", filepath.Join(merged, "image-bin"))
	upper := runIn(t, "/", filepath.Join(merged, "dropped-bin"))
	for _, c := range []struct {
		name, real string
		cmd        *exec.Cmd
		upper      bool
	}{
		{"image-bin", filepath.Join(base, "lower", "image-bin"), lower, false},
		{"dropped-bin", filepath.Join(base, "upper", "dropped-bin"), upper, true},
	} {
		ev := r.waitFor(t, c.name, execOf(c.cmd.Process.Pid))
		x := ev.Executable
		if !x.Overlay || x.Path != merged+"/"+c.name {
			t.Errorf("%s: %+v, want overlay, path %s/%s", c.name, x, merged, c.name)
			continue
		}
		t.Logf("%s: the layer decided by the kernel: %v", c.name, !x.LayerUnknown)
		if !x.LayerUnknown {
			if x.UpperLayer != c.upper || x.RealKnown {
				t.Errorf("%s: upper layer %v (real inode known %v), want %v and the kernel's own answer", c.name, x.UpperLayer, x.RealKnown, c.upper)
			}
			continue
		}
		// Before 6.5 the kernel hands the real inode to user space.
		var st unix.Stat_t
		if err := unix.Stat(c.real, &st); err != nil {
			t.Fatal(err)
		}
		if !x.RealKnown || x.UpperLayer || x.RealInode != st.Ino || x.RealStatDev() != st.Dev {
			t.Errorf("%s: layer unknown, real inode %v %d dev %d, want the inode %d dev %d of %s",
				c.name, x.RealKnown, x.RealInode, x.RealStatDev(), st.Ino, st.Dev, c.real)
		}
	}
}

func TestPathDepthCut(t *testing.T) {
	dir := realDir(t)
	deep := dir + strings.Repeat("/d", PathDepthLimit)
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	copyTrue(t, deep+"/x")
	r := startRecorder(t, Options{})
	cmd := runIn(t, deep, deep+"/x")
	ev := r.waitFor(t, "deep exec", execOf(cmd.Process.Pid))
	x := ev.Executable
	if !x.PathCut || !strings.HasSuffix(deep+"/x", x.Path) || len(x.Path) >= len(deep+"/x") {
		t.Errorf("path %q cut %v, want a cut tail of %s/x", x.Path, x.PathCut, deep)
	}
	if !ev.CwdCut || !strings.HasSuffix(deep, ev.Cwd) || len(ev.Cwd) >= len(deep) {
		t.Errorf("cwd %q cut %v, want a cut tail of %s", ev.Cwd, ev.CwdCut, deep)
	}
}

func TestFailedExecHasNoExecutable(t *testing.T) {
	dir := realDir(t)
	r := startRecorder(t, Options{})
	missing := filepath.Join(dir, "missing")
	cmd := exec.Command(missing)
	cmd.Dir = dir
	_ = cmd.Run()
	ev := r.waitFor(t, "failed exec", failedExecOf(missing))
	if ev.Executable.Valid || ev.Executable.Path != "" || ev.Cwd != dir {
		t.Errorf("failed exec: executable %+v cwd %q, want none and %s", ev.Executable, ev.Cwd, dir)
	}
}
