package main

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// copyExecutable copies /bin/true to path, executable.
func copyExecutable(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// An overlay's upper-layer binary is flagged and its lower-layer one is
// not, whichever side decides: the kernel from 6.5 on, the overlay
// mount's directories before (internal/overlay). The kernel guests run
// this on 5.10, 6.1 and 6.12.
func TestJSONOverlayUpperLayer(t *testing.T) {
	testenv.RequireRoot(t)
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", base, "tmpfs", 0, ""); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(base, unix.MNT_DETACH) })
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyExecutable(t, filepath.Join(base, "lower", "image-bin"))
	merged := filepath.Join(base, "merged")
	opts := "lowerdir=" + base + "/lower,upperdir=" + base + "/upper,workdir=" + base + "/work"
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("overlayfs: %v", err) // a kernel without it
	}
	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })
	copyExecutable(t, filepath.Join(merged, "dropped-bin"))

	c := startCLI(t, "--json")
	lower := runMarked(t, filepath.Join(merged, "image-bin"))
	upper := runMarked(t, filepath.Join(merged, "dropped-bin"))
	assertStoppedCleanly(t, c, c.stop(t))
	lines := parseJSONLines(t, c.stdout.String())
	for _, want := range []struct {
		pid   int
		upper bool
	}{{lower.Process.Pid, false}, {upper.Process.Pid, true}} {
		found := false
		for _, l := range lines {
			if p, _ := intAttr(l, procattr.ProcessPID); l.Event != procattr.EventExec || p != int64(want.pid) {
				continue
			}
			found = true
			if got, ok := l.Attributes[procattr.ExecutableUpperLayer]; !ok || got != want.upper {
				t.Errorf("pid %d (%v): %s = %v (present %v), want %v", want.pid, l.Attributes[procattr.ProcessExecutablePath],
					procattr.ExecutableUpperLayer, got, ok, want.upper)
			}
		}
		if !found {
			t.Errorf("no exec record of pid %d in:\n%s", want.pid, c.stdout.String())
		}
	}
}
