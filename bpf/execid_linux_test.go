//go:build linux && (amd64 || arm64)

package bpf

import (
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

func execsOf(r *recorder, pid int) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, ev := range r.evs {
		if ev.Kind == KindExec && int(ev.PID) == pid && ev.Retval == 0 {
			out = append(out, ev)
		}
	}
	return out
}

// One pid that execs twice runs two images with one start; its exit names
// the second; a child's parent image is the parent's exec's image.
func TestExecImages(t *testing.T) {
	r := startRecorder(t, Options{Exits: true})
	cmd := run(t, "sh", "-c", "exec /bin/true twice")
	pid := cmd.Process.Pid
	r.waitFor(t, "second exec", func(e *Event) bool { return execOf(pid)(e) && e.Filename == "/bin/true" })
	exit := r.waitFor(t, "exit", exitOf(pid))
	execs := execsOf(r, pid)
	if len(execs) != 2 {
		t.Fatalf("%d exec records of pid %d, want 2", len(execs), pid)
	}
	first, second := execs[0].Image, execs[1].Image
	if first.StartBootNs == 0 || first.StartBootNs != second.StartBootNs || second.ExecSeq != first.ExecSeq+1 {
		t.Errorf("images %+v then %+v: want one start and the counter one up", first, second)
	}
	if exit.Image != second {
		t.Errorf("exit image %+v, exec image %+v", exit.Image, second)
	}

	cmd = run(t, "sh", "-c", "/bin/true child; :")
	sh := r.waitFor(t, "shell exec", execOf(cmd.Process.Pid))
	child := r.waitFor(t, "child exec", func(e *Event) bool {
		return e.Kind == KindExec && int(e.PPID) == cmd.Process.Pid && e.Filename == "/bin/true"
	})
	if child.ParentImage != sh.Image {
		t.Errorf("child's parent image %+v, the shell's exec %+v", child.ParentImage, sh.Image)
	}
}

// A pid used twice (ns_last_pid steers the second process onto it) names
// two images.
func TestExecImagesOnPidReuse(t *testing.T) {
	testenv.RequireRoot(t)
	r := startRecorder(t, Options{})
	first := run(t, "/bin/true", "first").Process.Pid
	img := r.waitFor(t, "first exec", execOf(first)).Image
	for try := 0; ; try++ {
		// Other processes on the host may take the pid first: retry.
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(first-1)), 0); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/bin/true", "second")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		if cmd.Process.Pid == first {
			second := r.waitFor(t, "second exec", func(e *Event) bool {
				return execOf(first)(e) && len(e.Args) == 2 && e.Args[1] == "second"
			}).Image
			if second.PID != img.PID || second == img {
				t.Errorf("pid %d reused: images %+v and %+v", first, img, second)
			}
			return
		}
		if try == 50 {
			t.Fatalf("pid %d not reused in 50 tries", first)
		}
	}
}

// A probe started after an exec (an agent restarted) names the image at
// its exit as the first probe did at its exec.
func TestExecImageAcrossProbes(t *testing.T) {
	r := startRecorder(t, Options{})
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	img := r.waitFor(t, "exec", execOf(cmd.Process.Pid)).Image
	later := startRecorder(t, Options{Exits: true})
	cmd.Process.Kill()
	cmd.Wait()
	if got := later.waitFor(t, "exit", exitOf(cmd.Process.Pid)).Image; got != img {
		t.Errorf("the later probe's exit image %+v, the first probe's exec %+v", got, img)
	}
}
