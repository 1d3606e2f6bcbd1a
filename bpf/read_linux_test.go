//go:build linux && (amd64 || arm64)

package bpf

import (
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

func TestOverloadCountsLoss(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			testenv.RequireRoot(t)
			// One page of buffer, and nobody reading during the burst.
			p, err := Open(Options{Transport: tr, BufferSize: MinBufferSize, Exits: true, DrainPeriod: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			for range 200 {
				_ = exec.Command("/bin/true", "burst").Run()
			}
			var ev Event
			for p.Read(&ev) == nil { // drain what fitted
			}
			if p.Stats().Lost() == 0 {
				t.Fatalf("no loss counted after 200 execs into one page: %+v", p.Stats())
			}
			// The reader keeps going after the loss.
			cmd := run(t, "/bin/true", "after-burst")
			deadline := time.Now().Add(testenv.Timeout(5 * time.Second))
			for time.Now().Before(deadline) {
				err := p.Read(&ev)
				if err == nil && ev.Kind == KindExec && int(ev.PID) == cmd.Process.Pid {
					t.Logf("after the burst: %+v", p.Stats())
					return
				}
				if err != nil && !errors.Is(err, ErrDrained) {
					t.Fatal(err)
				}
			}
			t.Fatal("no event after the burst")
		})
	}
}

// Stop loses nothing already captured: events buffered when it is called
// are still read, then Read reports ErrClosed.
func TestStopDrainsTheBuffer(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			testenv.RequireRoot(t)
			p, err := Open(Options{Transport: tr, DrainPeriod: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			cmd := run(t, "/bin/true", "before-stop")
			if err := p.Stop(); err != nil {
				t.Fatal(err)
			}
			found := false
			var ev Event
			for {
				err := p.Read(&ev)
				if errors.Is(err, ErrClosed) {
					break
				}
				if err != nil && !errors.Is(err, ErrDrained) {
					t.Fatal(err)
				}
				found = found || err == nil && int(ev.PID) == cmd.Process.Pid
			}
			if !found {
				t.Fatal("the event buffered before Stop was not read")
			}
		})
	}
}

// An idle ring-buffer reader blocks until the first record instead of
// waking every drain period, and that record is read at once rather than
// at the end of a period.
func TestIdleRingBufferWaitsForData(t *testing.T) {
	testenv.RequireRoot(t)
	cg := makeCgroup(t) // empty: nothing passes the filter until we move in
	// readAll opens a probe of the empty cgroup and reads it in the
	// background until the test ends, counting drains.
	readAll := func(t *testing.T, period time.Duration) (<-chan Event, *atomic.Int64) {
		p, err := Open(Options{Transport: TransportRingbuf, CgroupPath: cg, DrainPeriod: period})
		if err != nil {
			t.Fatal(err)
		}
		drains := new(atomic.Int64)
		events := make(chan Event, 16)
		go func() {
			defer close(events)
			for {
				var ev Event
				err := p.Read(&ev)
				switch {
				case errors.Is(err, ErrDrained):
					drains.Add(1)
				case err != nil:
					return
				default:
					ev.Args = slices.Clone(ev.Args)
					events <- ev
				}
			}
		}()
		t.Cleanup(func() {
			p.Close()
			for range events {
			}
		})
		return events, drains
	}
	execInCgroup := func() *exec.Cmd {
		cmd := exec.Command("/bin/sh", "-c", "echo $$ > "+filepath.Join(cg, "cgroup.procs")+" && exec /bin/true idle-reader")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("moving into %s: %v %s", cg, err, out)
		}
		return cmd
	}
	waitForExec := func(events <-chan Event, pid int, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case ev := <-events:
				if execOf(pid)(&ev) {
					return
				}
			case <-deadline:
				t.Fatalf("the exec was not read within %s", within)
			}
		}
	}

	t.Run("no drains while idle", func(t *testing.T) {
		const period = 10 * time.Millisecond
		events, drains := readAll(t, period)
		// Not a synchronisation: a window of 50 periods in which a
		// reader on a timer would drain about 50 times.
		time.Sleep(50 * period)
		if n := drains.Load(); n > 1 {
			t.Fatalf("%d drains in %s with nothing to read, want none", n, 50*period)
		}
		waitForExec(events, execInCgroup().Process.Pid, testenv.Timeout(5*time.Second))
	})
	t.Run("first record without waiting for the period", func(t *testing.T) {
		events, _ := readAll(t, MaxDrainPeriod)
		// A reader on a timer would read it only when the 10 s period ends.
		waitForExec(events, execInCgroup().Process.Pid, MaxDrainPeriod/2)
	})
}
