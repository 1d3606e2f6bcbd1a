package main

import (
	"bufio"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

// tableWriter prints the classic execsnoop table:
//
//	[TIME    ] [TIME(s) ] [UID   ] PCOMM            PID     PPID    RET ARGS
//
// Each row is formatted into a reused byte slice: no allocation or
// syscall per event.
type tableWriter struct {
	w     *bufio.Writer
	cfg   *config
	start time.Time
	buf   []byte
}

func newTableWriter(w *bufio.Writer, cfg *config, start time.Time) *tableWriter {
	return &tableWriter{w: w, cfg: cfg, start: start, buf: make([]byte, 0, 512)}
}

// Column widths: PCOMM holds a 15-byte comm, PID and PPID a pid up to the
// largest pid_max (4194304).
const (
	commWidth = 16
	pidWidth  = 7
)

func (t *tableWriter) header() {
	b := t.buf[:0]
	field := func(name string, width int) {
		start := len(b)
		b = padTo(append(b, name...), start, width)
	}
	if t.cfg.printTime {
		field("TIME", 8)
	}
	if t.cfg.printTimestamp {
		field("TIME(s)", 8)
	}
	if t.cfg.printUID {
		field("UID", 6)
	}
	field("PCOMM", commWidth)
	field("PID", pidWidth)
	field("PPID", pidWidth)
	b = append(b, "RET ARGS\n"...)
	t.buf = b
	t.w.Write(b)
}

func (t *tableWriter) write(ev *bpf.Event, _ *exehash.Identity) error {
	b := t.buf[:0]
	if t.cfg.printTime {
		start := len(b)
		b = padTo(ev.Time.Local().AppendFormat(b, time.TimeOnly), start, 8)
	}
	if t.cfg.printTimestamp {
		start := len(b)
		b = strconv.AppendFloat(b, ev.Time.Sub(t.start).Seconds(), 'f', 3, 64)
		b = padTo(b, start, 8)
	}
	if t.cfg.printUID {
		start := len(b)
		b = padTo(strconv.AppendUint(b, uint64(ev.UID), 10), start, 6)
	}
	start := len(b)
	b = padTo(append(b, ev.Comm...), start, commWidth)
	start = len(b)
	b = padTo(strconv.AppendUint(b, uint64(ev.PID), 10), start, pidWidth)
	start = len(b)
	b = padTo(strconv.AppendUint(b, uint64(ev.PPID), 10), start, pidWidth)

	// RET, right-aligned in 3 columns like the classic %3d.
	ret := int64(ev.Retval)
	if ev.Kind == bpf.KindExit {
		ret = int64(ev.ShellExitCode())
	}
	var num [24]byte
	n := strconv.AppendInt(num[:0], ret, 10)
	for i := len(n); i < 3; i++ {
		b = append(b, ' ')
	}
	b = append(append(b, n...), ' ')

	switch ev.Kind {
	case bpf.KindExec:
		b = t.appendArgs(b, ev)
	case bpf.KindExit:
		b = appendExit(b, ev)
	default:
		b = append(b, ev.Kind.String()...)
	}
	b = append(b, '\n')
	t.buf = b
	_, err := t.w.Write(b)
	return err
}

// appendArgs appends the arguments: joined by spaces like the classic
// tool, or with -q as a shell command line (procattr.QuoteArgs).
func (t *tableWriter) appendArgs(b []byte, ev *bpf.Event) []byte {
	if t.cfg.quote {
		b = append(b, procattr.QuoteArgs(ev.Args)...)
		switch {
		case ev.ArgsUnreadable:
			b = append(b, " # arguments unreadable"...)
		case ev.ArgsTruncated:
			b = append(b, " # truncated, "...)
			b = strconv.AppendUint(b, uint64(ev.Argc), 10)
			b = append(b, " arguments"...)
		}
		return b
	}
	for i, a := range ev.Args {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, a...)
	}
	if ev.ArgsTruncated || ev.ArgsUnreadable {
		b = append(b, " ..."...)
	}
	return b
}

// appendExit appends "[exit status 3 after 1.20s, cpu 0.95s, max rss 12.3 MiB]"
// or "[killed by SIGKILL after 0.05s (core dumped), cpu ...]": procattr's
// exit body without the comm (the PCOMM column), rounded the same way, and
// what the whole process used: CPU time (user and system) and peak RSS.
func appendExit(b []byte, ev *bpf.Event) []byte {
	if sig := ev.Signal(); sig != 0 {
		b = append(b, "[killed by "...)
		b = append(b, unix.SignalName(syscall.Signal(sig))...)
	} else {
		b = append(b, "[exit status "...)
		b = strconv.AppendInt(b, int64(ev.ExitStatus()), 10)
	}
	b = append(b, " after "...)
	b = strconv.AppendFloat(b, ev.Lifetime().Round(10*time.Millisecond).Seconds(), 'f', 2, 64)
	b = append(b, 's')
	if ev.Signal() != 0 && ev.CoreDumped() {
		b = append(b, " (core dumped)"...)
	}
	if ru := &ev.Rusage; ru.Valid {
		b = append(b, ", cpu "...)
		b = strconv.AppendFloat(b, ru.CPU().Seconds(), 'f', 2, 64)
		b = append(b, "s, max rss "...)
		b = strconv.AppendFloat(b, float64(ru.MaxRSS)/(1<<20), 'f', 1, 64)
		b = append(b, " MiB"...)
	}
	return append(b, ']')
}

// padTo pads the field b[start:] with spaces to width and appends the
// separating space.
func padTo(b []byte, start, width int) []byte {
	for i := len(b) - start; i < width; i++ {
		b = append(b, ' ')
	}
	return append(b, ' ')
}
