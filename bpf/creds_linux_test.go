//go:build linux && (amd64 || arm64)

package bpf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// nobody is the unprivileged user the cases run as.
const nobody = 65534

// setresidExec is a helper mode: distinct real, effective and saved ids,
// then an exec that fails, whose record must carry exactly those.
func setresidExec() int {
	if err := syscall.Setresgid(3, 4, 5); err != nil {
		fmt.Fprintln(os.Stderr, "setresgid:", err)
		return 3
	}
	if err := syscall.Setresuid(1, 2, 6); err != nil {
		fmt.Fprintln(os.Stderr, "setresuid:", err)
		return 3
	}
	err := syscall.Exec(os.Getenv("EXECSNOOP_TEST_MISSING"), []string{"missing"}, nil)
	fmt.Fprintln(os.Stderr, "exec:", err)
	return 4
}

// privilegedCopies puts copies of id and grep, with set-id bits or file
// capabilities, in a directory uid 65534 can reach (t.TempDir is 0700).
func privilegedCopies(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("setcap"); err != nil {
		t.Skip("setcap (libcap2-bin) is not installed")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	dir := testenv.SharedDir(t)
	copyTo := func(src, name string, mode os.FileMode) {
		testenv.RootOwnedCopy(t, src, filepath.Join(dir, name), mode)
	}
	copyTo("/usr/bin/id", "id-setuid", 0o755|os.ModeSetuid)
	copyTo("/usr/bin/id", "id-setgid", 0o755|os.ModeSetgid)
	copyTo("/usr/bin/grep", "grep-plain", 0o755)
	copyTo("/usr/bin/grep", "grep-caps", 0o755)
	copyTo("/usr/bin/grep", "grep-caps-permitted", 0o755)
	// Set-user-ID root, but not a program: the exec fails (ENOEXEC).
	if err := os.WriteFile(filepath.Join(dir, "setuid-not-a-program"), []byte("\x00\x01 no format"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "setuid-not-a-program"), 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	for name, caps := range map[string]string{"grep-caps": "cap_net_raw+ep", "grep-caps-permitted": "cap_net_raw+p"} {
		if out, err := exec.Command("setcap", caps, filepath.Join(dir, name)).CombinedOutput(); err != nil {
			t.Fatalf("setcap %s: %v %s", caps, err, out)
		}
	}
	return dir
}

// asNobody runs a program as uid and gid 65534 with no supplementary
// groups and returns its output.
func asNobody(t *testing.T, path string, args ...string) string {
	t.Helper()
	argv := append([]string{"--reuid", strconv.Itoa(nobody), "--regid", strconv.Itoa(nobody), "--clear-groups", path}, args...)
	out, err := exec.Command("setpriv", argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("setpriv %s: %v %s", path, err, out)
	}
	return string(out)
}

// capEff is the CapEff line of /proc/self/status as grep printed it.
func capEff(t *testing.T, out string) uint64 {
	t.Helper()
	m := regexp.MustCompile(`CapEff:\s+([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no CapEff in %q", out)
	}
	v, err := strconv.ParseUint(m[1], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func successfulExecOf(path string) func(*Event) bool {
	return func(e *Event) bool { return e.Kind == KindExec && e.Filename == path && e.Retval == 0 }
}

type ids struct{ uid, ruid, suid, gid, rgid, sgid uint32 }

func idsOf(ev *Event) ids {
	return ids{ev.UID, ev.RealUID, ev.SavedUID, ev.GID, ev.RealGID, ev.SavedGID}
}

// Each way an exec raises privileges is reported as what it is, the ids
// are the new image's (id's own output agrees), the capabilities are what
// the new image reads in /proc/self/status, and look-alikes raise nothing.
func TestExecCredentials(t *testing.T) {
	testenv.RequireRoot(t)
	dir := privilegedCopies(t)
	path := func(name string) string { return filepath.Join(dir, name) }
	r := startRecorder(t, Options{})

	t.Run("setuid", func(t *testing.T) {
		out := asNobody(t, path("id-setuid"))
		if !strings.Contains(out, "euid=0(") {
			t.Fatalf("the setuid copy did not run as euid 0: %s", out)
		}
		ev := r.waitFor(t, "setuid exec", successfulExecOf(path("id-setuid")))
		if got, want := idsOf(&ev), (ids{0, nobody, 0, nobody, nobody, nobody}); got != want {
			t.Errorf("ids %+v, want %+v", got, want)
		}
		if ev.Privileges != PrivSetuid {
			t.Errorf("privileges %#x, want setuid", ev.Privileges)
		}
		// Root by a set-user-ID bit holds the bounding set, ours.
		if ev.CapEffective != capBnd(t) {
			t.Errorf("capabilities %#x, want the bounding set %#x", ev.CapEffective, capBnd(t))
		}
	})
	t.Run("setgid", func(t *testing.T) {
		out := asNobody(t, path("id-setgid"))
		if !strings.Contains(out, "egid=0(") {
			t.Fatalf("the setgid copy did not run as egid 0: %s", out)
		}
		ev := r.waitFor(t, "setgid exec", successfulExecOf(path("id-setgid")))
		if got, want := idsOf(&ev), (ids{nobody, nobody, nobody, 0, nobody, 0}); got != want {
			t.Errorf("ids %+v, want %+v", got, want)
		}
		if ev.Privileges != PrivSetgid || ev.CapEffective != 0 {
			t.Errorf("privileges %#x capabilities %#x, want setgid and none", ev.Privileges, ev.CapEffective)
		}
	})
	t.Run("file capabilities", func(t *testing.T) {
		for name, want := range map[string]uint64{"grep-caps": 1 << 13, "grep-caps-permitted": 0} {
			out := asNobody(t, path(name), "CapEff", "/proc/self/status")
			if got := capEff(t, out); got != want {
				t.Fatalf("%s runs with CapEff %#x, want %#x (CAP_NET_RAW)", name, got, want)
			}
			ev := r.waitFor(t, "exec with file capabilities", successfulExecOf(path(name)))
			if got, want := idsOf(&ev), (ids{nobody, nobody, nobody, nobody, nobody, nobody}); got != want {
				t.Errorf("%s: ids %+v, want %+v", name, got, want)
			}
			if ev.Privileges != PrivFileCaps || ev.CapEffective != want {
				t.Errorf("%s: privileges %#x capabilities %#x, want file_caps and %#x", name, ev.Privileges, ev.CapEffective, want)
			}
		}
	})
	t.Run("plain exec by a user", func(t *testing.T) {
		out := asNobody(t, path("grep-plain"), "CapEff", "/proc/self/status")
		ev := r.waitFor(t, "plain exec", successfulExecOf(path("grep-plain")))
		if got, want := idsOf(&ev), (ids{nobody, nobody, nobody, nobody, nobody, nobody}); got != want {
			t.Errorf("ids %+v, want %+v", got, want)
		}
		if ev.Privileges != 0 || ev.CapEffective != 0 || capEff(t, out) != 0 {
			t.Errorf("privileges %#x capabilities %#x", ev.Privileges, ev.CapEffective)
		}
	})
	t.Run("real root, effective user", func(t *testing.T) {
		// The kernel gives the real root its bounding set as permitted
		// capabilities at exec: not file capabilities, nothing to list.
		out, err := exec.Command("setpriv", "--euid", strconv.Itoa(nobody), path("grep-plain"), "CapPrm", "/proc/self/status").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "CapPrm:") {
			t.Fatalf("setpriv --euid: %v %s", err, out)
		}
		ev := r.waitFor(t, "exec by the real root", func(e *Event) bool {
			return successfulExecOf(path("grep-plain"))(e) && e.UID == nobody && e.RealUID == 0
		})
		if ev.Privileges != 0 || ev.CapEffective != 0 {
			t.Errorf("privileges %#x capabilities %#x, want none", ev.Privileges, ev.CapEffective)
		}
	})
	t.Run("root", func(t *testing.T) {
		before := time.Now()
		cmd := exec.Command(path("grep-plain"), "CapEff", "/proc/self/status")
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		ev := r.waitFor(t, "root's exec", execOf(cmd.Process.Pid))
		if got := idsOf(&ev); got != (ids{}) {
			t.Errorf("ids %+v, want all 0", got)
		}
		if ev.Privileges != 0 || ev.CapEffective != capEff(t, string(out)) {
			t.Errorf("privileges %#x capabilities %#x, want none and %#x", ev.Privileges, ev.CapEffective, capEff(t, string(out)))
		}
		// The process started at its fork, just before the exec.
		if ev.StartTime.Before(before.Add(-time.Second)) || ev.StartTime.After(ev.Time) {
			t.Errorf("start %s, not between %s and the exec at %s", ev.StartTime, before, ev.Time)
		}
		// Root running a setuid-root program gains nothing.
		setuid := exec.Command(path("id-setuid"))
		if err := setuid.Run(); err != nil {
			t.Fatal(err)
		}
		ev = r.waitFor(t, "root's setuid exec", execOf(setuid.Process.Pid))
		if got := idsOf(&ev); got != (ids{}) || ev.Privileges != 0 {
			t.Errorf("root's setuid-root exec: ids %+v privileges %#x, want 0 and none", got, ev.Privileges)
		}
	})
	t.Run("failed execs keep the caller's", func(t *testing.T) {
		// A set-user-ID root file that fails to exec raises nothing.
		cmd := exec.Command("setpriv", "--reuid", strconv.Itoa(nobody), "--regid", strconv.Itoa(nobody), "--clear-groups",
			path("setuid-not-a-program"))
		if err := cmd.Run(); err == nil {
			t.Fatal("a file that is not a program ran")
		}
		ev := r.waitFor(t, "failed setuid exec", failedExecOf(path("setuid-not-a-program")))
		if got, want := idsOf(&ev), (ids{nobody, nobody, nobody, nobody, nobody, nobody}); got != want || ev.Privileges != 0 {
			t.Errorf("ids %+v privileges %#x, want %+v and none", got, ev.Privileges, want)
		}

		missing := filepath.Join(dir, "missing")
		helper := exec.Command(os.Args[0])
		helper.Env = append(os.Environ(), helperEnv+"=setresid", "EXECSNOOP_TEST_MISSING="+missing)
		if out, err := helper.CombinedOutput(); !strings.Contains(string(out), "exec: no such file") {
			t.Fatalf("helper: %v %s", err, out)
		}
		ev = r.waitFor(t, "failed exec with distinct ids", failedExecOf(missing))
		if got, want := idsOf(&ev), (ids{2, 1, 6, 4, 3, 5}); got != want || ev.Privileges != 0 || ev.CapEffective != 0 {
			t.Errorf("ids %+v privileges %#x capabilities %#x, want %+v and none", got, ev.Privileges, ev.CapEffective, want)
		}
	})
}

// capBnd is this process's bounding set.
func capBnd(t *testing.T) uint64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`CapBnd:\s+([0-9a-f]+)`).FindSubmatch(status)
	if m == nil {
		t.Fatal("no CapBnd in /proc/self/status")
	}
	v, err := strconv.ParseUint(string(m[1]), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
