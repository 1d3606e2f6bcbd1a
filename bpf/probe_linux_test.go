//go:build linux && (amd64 || arm64)

package bpf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
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
	case "memfd":
		os.Exit(memfdExec())
	case "unlinked":
		os.Exit(unlinkedExec(os.Getenv(helperArgEnv)))
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
	testenv.RequireRoot(t)
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
	wait := testenv.Timeout(5 * time.Second)
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

func TestCloseIsIdempotent(t *testing.T) {
	testenv.RequireRoot(t)
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
	testenv.RequireRoot(t)
	_, err := Open(Options{CgroupPath: "/tmp"})
	if err == nil || !strings.Contains(err.Error(), "not a cgroup v2 directory") {
		t.Errorf("cgroup filter on /tmp: %v", err)
	}
}
