//go:build linux && (amd64 || arm64)

package bpf

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// Read fills ev with the next event. It blocks until an event arrives or
// a drain ends with the buffer empty (ErrDrained), and returns ErrClosed
// once Close was called. Records that cannot be decoded are counted in
// Stats and skipped. Drains come at most once per drain period; an idle
// ring buffer is waited on until its first record, which starts a drain.
// Read waits without bound only after a drain that returned no events, so
// a caller that batches events must hand them on at such an ErrDrained.
func (p *Probe) Read(ev *Event) error {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	for {
		if p.idle {
			p.waitForDrain()
		}
		raw, lost, err := p.records.next()
		if err == nil && p.awaiting {
			p.awaiting = false
			p.startDrain()
		}
		switch {
		case p.stopped.Load() && (errors.Is(err, ringbuf.ErrFlushed) || errors.Is(err, perf.ErrFlushed) ||
			errors.Is(err, os.ErrDeadlineExceeded)):
			return ErrClosed
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The buffer is empty: a batch boundary.
			p.idle = true
			return ErrDrained
		case err == nil:
			p.drainRecords++
		case errors.Is(err, os.ErrClosed):
			return ErrClosed
		case err != nil:
			return fmt.Errorf("reading the %s buffer: %w", p.transport, err)
		}
		if lost > 0 {
			p.lostSamples.Add(lost)
			continue
		}
		if err := p.decoder.decode(raw, ev); err != nil {
			p.decodeErrors.Add(1)
			continue
		}
		p.read.Add(1)
		return nil
	}
}

// waitForDrain ends the wait between drains. After a drain that found no
// records, a source that wakes on data is read without a deadline: next
// blocks until the first record (or Stop or Close, which wake it too), and
// that record starts the drain. Otherwise it sleeps until the next drain
// period (or Stop or Close) and starts the drain. The buffer must hold one
// period of events; the default holds thousands.
func (p *Probe) waitForDrain() {
	p.idle = false
	if p.drainRecords == 0 && p.records.wakesOnData() && !p.stopped.Load() {
		p.awaiting = true
		p.records.setDeadline(time.Time{})
		return
	}
	if d := time.Until(p.nextDrain); d > 0 {
		p.timer.Reset(d)
		select {
		case <-p.timer.C:
		case <-p.wake:
			p.timer.Stop()
		}
	}
	p.startDrain()
}

// startDrain arms a deadline in the past: the reader takes everything
// buffered without blocking, and reports os.ErrDeadlineExceeded once the
// buffer is empty.
func (p *Probe) startDrain() {
	p.drainRecords = 0
	p.nextDrain = time.Now().Add(p.opts.DrainPeriod)
	p.records.setDeadline(time.Now())
	p.decoder.clock = currentBootClock()
}

// Stats returns the counters so far; after Close, the final ones.
func (p *Probe) Stats() Stats {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	if p.closed {
		return p.finalStats
	}
	return p.collectStats()
}

func (p *Probe) collectStats() Stats {
	s := Stats{
		Read:         p.read.Load(),
		LostSamples:  p.lostSamples.Load(),
		DecodeErrors: p.decodeErrors.Load(),
	}
	if p.objs.Stats == nil {
		return s
	}
	sum := func(index execsnoopStatIndex) uint64 {
		var perCPU []uint64
		if err := p.objs.Stats.Lookup(uint32(index), &perCPU); err != nil {
			return 0
		}
		var total uint64
		for _, v := range perCPU {
			total += v
		}
		return total
	}
	s.LostExec = sum(execsnoopStatIndexSTAT_LOST_EXEC)
	s.LostExit = sum(execsnoopStatIndexSTAT_LOST_EXIT)
	s.LostFork = sum(execsnoopStatIndexSTAT_LOST_FORK)
	return s
}

func currentBootClock() bootClock {
	var boot, real unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &real)
	return bootClock{offset: time.Duration(real.Nano() - boot.Nano())}
}
