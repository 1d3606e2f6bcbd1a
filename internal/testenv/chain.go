package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Chain is a known process chain started by a test: bash -> sh -> sleep.
// Its lineage is read from /proc while it is alive, independently of the
// code under test.
type Chain struct {
	Bash       *exec.Cmd
	Sh, Sleep  int // pids
	Marker     string
	release    *os.File
	releasable bool
}

// StartChain runs bash -c "/bin/sh -c '...' MARKER; true", so that bash
// forks sh (whose $0 is the marker) and sh forks sleep. With gated, sh
// waits for a line on its stdin before it starts sleep (Release): a chain
// that starts before the collector and execs after it. StartChain returns
// once sh runs (and, ungated, once sleep runs); everything is killed when
// the test ends.
func StartChain(t testing.TB, marker string, gated bool) *Chain {
	t.Helper()
	script := "sleep 1000; true"
	if gated {
		script = "read line; sleep 1000; true"
	}
	c := &Chain{Marker: marker, Bash: exec.Command("/bin/bash", "-c", "/bin/sh -c '"+script+"' "+marker+"; true")}
	if gated {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		c.Bash.Stdin, c.release, c.releasable = r, w, true
		defer r.Close()
	}
	if err := c.Bash.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, pid := range []int{c.Sleep, c.Sh} {
			if pid != 0 {
				_ = syscallKill(pid)
			}
		}
		_ = c.Bash.Process.Kill()
		_ = c.Bash.Wait()
		if c.release != nil {
			c.release.Close()
		}
	})
	c.Sh = WaitChild(t, c.Bash.Process.Pid, func(args []string) bool {
		return len(args) == 4 && args[0] == "/bin/sh" && args[3] == marker
	})
	if !gated {
		c.Sleep = WaitChild(t, c.Sh, func(args []string) bool { return len(args) > 0 && args[0] == "sleep" })
	}
	return c
}

// Release lets a gated chain's sh start sleep, and waits until it runs.
func (c *Chain) Release(t testing.TB) {
	t.Helper()
	if !c.releasable {
		t.Fatal("the chain is not gated")
	}
	if _, err := c.release.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
	c.Sleep = WaitChild(t, c.Sh, func(args []string) bool { return len(args) > 0 && args[0] == "sleep" })
}

// WaitChild waits (15 s at most, scaled) for a child of parent whose
// argv matches, and returns its pid.
func WaitChild(t testing.TB, parent int, match func(args []string) bool) int {
	t.Helper()
	deadline := time.Now().Add(Timeout(15 * time.Second))
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || ProcPPID(pid) != parent {
				continue
			}
			if match(ProcArgs(pid)) {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no child of %d with the expected argv within the deadline", parent)
	return 0
}

// WaitGone waits (15 s at most, scaled) until pid has exited and been
// reaped: /proc no longer has it.
func WaitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(Timeout(15 * time.Second))
	for ProcPPID(pid) != -1 {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still exists", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ProcPPID is a process's parent from /proc/PID/stat, -1 when gone.
func ProcPPID(pid int) int {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// ProcArgs is a process's argv from /proc/PID/cmdline (nil when empty).
func ProcArgs(pid int) []string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// ProcExe is the target of /proc/PID/exe without the " (deleted)" the
// kernel appends for an unlinked file or a memfd, as the exec records name
// it ("" for a kernel thread).
func ProcExe(pid int) string {
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return strings.TrimSuffix(exe, " (deleted)")
}

// ProcAncestry is pid and its ancestors, nearest first, up to n, with the
// base name of each one's executable (its comm for a kernel thread).
func ProcAncestry(pid, n int) (pids []int64, names []string) {
	for ; pid > 0 && len(pids) < n; pid = ProcPPID(pid) {
		name := filepath.Base(ProcExe(pid))
		if ProcExe(pid) == "" {
			comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
			name = strings.TrimSpace(string(comm))
		}
		pids = append(pids, int64(pid))
		names = append(names, name)
	}
	return pids, names
}

func syscallKill(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
