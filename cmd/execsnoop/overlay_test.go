package main

import (
	"path/filepath"
	"testing"

	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// An overlay's upper-layer binary is flagged and its lower-layer one is
// not, whichever side decides: the kernel from 6.5 on, the overlay
// mount's directories before (internal/overlay). The kernel guests run
// this on 5.10, 6.1 and 6.12.
func TestJSONOverlayUpperLayer(t *testing.T) {
	_, merged := testenv.Overlay(t, func(lower string) {
		testenv.CopyFile(t, "/bin/true", filepath.Join(lower, "image-bin"), 0o755)
	})
	testenv.CopyFile(t, "/bin/true", filepath.Join(merged, "dropped-bin"), 0o755)

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
