//go:build linux && (amd64 || arm64)

package bpf

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A command under script(1) runs on a pty of /dev/pts, one from a pipe on
// none.
func TestExecTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script (bsdutils) is not installed")
	}
	r := startRecorder(t, Options{})
	out, err := exec.Command("script", "-qc", "tty; /bin/true on-a-pty", "/dev/null").Output()
	if err != nil {
		t.Fatalf("script: %v", err)
	}
	ev := r.waitFor(t, "exec on a pty", func(e *Event) bool {
		return e.Kind == KindExec && len(e.Args) == 2 && e.Args[1] == "on-a-pty"
	})
	// tty printed /dev/pts/N; the kernel names it ptsN with index N.
	dev := strings.TrimSpace(strings.ReplaceAll(string(out), "\r", ""))
	n, ok := strings.CutPrefix(dev, "/dev/pts/")
	if !ok || ev.TTYName != "pts"+n || strconv.Itoa(int(ev.TTYIndex)) != n {
		t.Errorf("tty printed %q, record has %q index %d", dev, ev.TTYName, ev.TTYIndex)
	}

	cmd := exec.Command("/bin/true", "from-a-pipe")
	cmd.Stdin = bytes.NewReader(nil)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no controlling terminal, whatever runs the test
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	ev = r.waitFor(t, "exec from a pipe", execOf(cmd.Process.Pid))
	if ev.TTYIndex != -1 || ev.TTYName != "" {
		t.Errorf("exec without a terminal has tty %q index %d", ev.TTYName, ev.TTYIndex)
	}
	if ev.SessionID != uint32(cmd.Process.Pid) || ev.PGID != uint32(cmd.Process.Pid) {
		t.Errorf("a session leader's record has session %d group %d, want %d", ev.SessionID, ev.PGID, cmd.Process.Pid)
	}
}

// The session and group of a live process are /proc/PID/stat's; its vpid
// is its pid outside a PID namespace.
func TestExecSession(t *testing.T) {
	r := startRecorder(t, Options{})
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ev := r.waitFor(t, "exec", execOf(cmd.Process.Pid))
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid pgrp session ...
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if got := fmt.Sprint(ev.PGID, " ", ev.SessionID); got != f[2]+" "+f[3] {
		t.Errorf("group and session %s, /proc/PID/stat says %s %s", got, f[2], f[3])
	}
	if ev.VPID != ev.PID {
		t.Errorf("vpid %d, pid %d", ev.VPID, ev.PID)
	}
	if want, err := os.ReadFile("/proc/self/sessionid"); err == nil && strconv.Itoa(int(ev.AuditSessionID)) != strings.TrimSpace(string(want)) && ev.AuditSessionID != ^uint32(0) {
		t.Errorf("audit session %d, /proc/self/sessionid %s", ev.AuditSessionID, want)
	}
}

// unshare --pid --fork runs its command as pid 1 of a new namespace.
func TestExecVPID(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) is not installed")
	}
	r := startRecorder(t, Options{})
	if out, err := exec.Command("unshare", "--pid", "--fork", "/bin/true", "in-a-pid-namespace").CombinedOutput(); err != nil {
		t.Fatalf("unshare: %v %s", err, out)
	}
	ev := r.waitFor(t, "exec in a PID namespace", func(e *Event) bool {
		return e.Kind == KindExec && len(e.Args) == 2 && e.Args[1] == "in-a-pid-namespace"
	})
	if ev.VPID != 1 || ev.PID == 1 {
		t.Errorf("vpid %d pid %d, want vpid 1", ev.VPID, ev.PID)
	}
}
