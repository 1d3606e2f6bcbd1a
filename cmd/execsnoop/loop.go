package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/proctable"
)

// eventWriter prints one event into the buffered output.
type eventWriter interface {
	// write prints ev with its executable's identity (nil: none).
	write(ev *bpf.Event, id *exehash.Identity) error
}

// loop is the reading loop and its counters.
type loop struct {
	cfg     *config
	probe   *bpf.Probe
	out     *bufio.Writer
	printer eventWriter
	otlp    *otlpOutput
	ids     *identities // nil: no hashing
	stderr  io.Writer
	// table is the lineage's process table (nil without it), kept
	// current with every event read, filtered or not.
	table        *proctable.Table
	tableDropped int64 // its drops, as Dropped hands them over

	seen       uint64
	matched    map[uint32]struct{} // pids whose exec matched -l, for their exits
	lostSeen   uint64              // the lost total at the last warning
	lostReadAt time.Time           // when the loss counters were last read
}

func (l *loop) run() int {
	var ev bpf.Event
	if l.cfg.line != "" {
		l.matched = make(map[uint32]struct{})
	}
	for {
		err := l.probe.Read(&ev)
		switch {
		case err == nil:
			if !l.handle(&ev) {
				return 1
			}
		case errors.Is(err, bpf.ErrDrained):
			if err := l.releaseHeld(); err != nil {
				fmt.Fprintf(l.stderr, "execsnoop: writing the output: %s\n", oneLine(err))
				return 1
			}
			if err := l.out.Flush(); err != nil {
				fmt.Fprintf(l.stderr, "execsnoop: writing the output: %s\n", oneLine(err))
				return 1
			}
			if l.table != nil {
				l.tableDropped += l.table.Dropped()
			}
			if now := time.Now(); now.Sub(l.lostReadAt) >= lostWarnEvery {
				l.lostReadAt = now
				l.warnLost(l.probe.Stats())
			}
		case errors.Is(err, bpf.ErrClosed):
			return l.finish()
		default:
			l.finish()
			fmt.Fprintf(l.stderr, "execsnoop: reading events: %s\n", oneLine(err))
			return 1
		}
	}
}

// handle prints and exports one event; false when printing failed. The
// process table sees every event in read order, after its record is made
// (so that an exec's record names its lineage as it was before the exec),
// also when the record waits for its executable's hash.
func (l *loop) handle(ev *bpf.Event) bool {
	// Forks, and exits without --exits, load only for the process table.
	quiet := ev.Kind == bpf.KindFork || ev.Kind == bpf.KindExit && !l.cfg.exits
	if !quiet {
		l.seen++
		if !l.keep(ev) {
			if l.otlp != nil {
				l.otlp.acct.filter()
			}
			quiet = true
		}
	}
	var err error
	if l.ids != nil {
		err = l.ids.add(ev, time.Now(), quiet, l.emit)
	} else {
		err = l.emit(ev, time.Now(), nil, quiet)
	}
	if err != nil {
		fmt.Fprintf(l.stderr, "execsnoop: writing the output: %s\n", oneLine(err))
		return false
	}
	return true
}

// emit exports and prints one event, then shows it to the process table.
// Exported before printed: every event seen is accounted for in the OTLP
// records even when printing fails.
func (l *loop) emit(ev *bpf.Event, observed time.Time, id *exehash.Identity, quiet bool) error {
	if l.table != nil {
		defer l.table.Observe(ev)
	}
	if quiet {
		return nil
	}
	if l.otlp != nil {
		l.otlp.emit(ev, observed, id)
	}
	if l.printer != nil {
		return l.printer.write(ev, id)
	}
	return nil
}

// releaseHeld emits every event held for its hash, each after waiting
// until its deadline at most (a drain: nothing else to read now).
func (l *loop) releaseHeld() error {
	if l.ids == nil {
		return nil
	}
	return l.ids.release(true, l.emit)
}

func (l *loop) finish() int {
	if err := l.releaseHeld(); err != nil {
		fmt.Fprintf(l.stderr, "execsnoop: writing the output: %s\n", oneLine(err))
		return 1
	}
	if err := l.out.Flush(); err != nil {
		fmt.Fprintf(l.stderr, "execsnoop: writing the output: %s\n", oneLine(err))
		return 1
	}
	return 0
}

// keep applies the user-space filters -n and -l.
func (l *loop) keep(ev *bpf.Event) bool {
	if l.cfg.name != "" && !strings.Contains(ev.Comm, l.cfg.name) {
		return false
	}
	if l.cfg.line == "" {
		return true
	}
	switch ev.Kind {
	case bpf.KindExec:
		if !argsContain(ev.Args, l.cfg.line) {
			delete(l.matched, ev.PID) // a later exec of a matched process
			return false
		}
		if len(l.matched) >= maxTrackedPIDs {
			clear(l.matched) // exits were lost; do not grow without bound
		}
		l.matched[ev.PID] = struct{}{}
		return true
	case bpf.KindExit:
		// An exit has no arguments: keep it when its exec matched.
		_, ok := l.matched[ev.PID]
		delete(l.matched, ev.PID)
		return ok
	}
	return false
}

// argsContain reports whether the command line (the arguments joined by
// spaces) contains s.
func argsContain(args []string, s string) bool {
	for _, a := range args {
		if strings.Contains(a, s) {
			return true
		}
	}
	return strings.Contains(s, " ") && strings.Contains(strings.Join(args, " "), s)
}

// warnLost prints how many events the kernel dropped since the last
// warning. The reading loop calls it at most once per lostWarnEvery.
func (l *loop) warnLost(s bpf.Stats) {
	total := s.Lost()
	if total <= l.lostSeen {
		return
	}
	fmt.Fprintf(l.stderr, "execsnoop: lost %d events (total %d): buffer full (%s, %d bytes); raise --buffer-size\n",
		total-l.lostSeen, total, l.probe.Transport(), bufferSize(l.cfg.opts))
	l.lostSeen = total
}
