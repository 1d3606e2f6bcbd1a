// Package proctable is the one process table in user space: the processes
// alive now, keyed by host tgid, with the image each runs (its exec id
// inputs, executable path and name, redacted and bounded arguments) and its
// parent. Exec, fork and exit events keep it current; at start-up it is
// filled from /proc with the processes already running. It answers an exec
// record's lineage: the parent's executable and arguments and the
// ancestors, nearest first. It is bounded: when full it drops its oldest
// entry and counts the drop.
//
// A Table is not safe for concurrent use: the one goroutine that reads
// events owns it.
package proctable

import (
	"path"
	"strings"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/redact"
)

// Source is how the table knows a process's image.
type Source uint8

const (
	// SourceUnknown: the table does not hold the process (it started
	// before the table and /proc was not read, or its fork or exec was
	// filtered out in the kernel, lost, or dropped at the bound).
	SourceUnknown Source = iota
	// SourceExec: its exec was seen (or its fork from a process whose
	// image the table knows).
	SourceExec
	// SourceProcfs: read from /proc at start-up.
	SourceProcfs
)

func (s Source) String() string {
	switch s {
	case SourceExec:
		return "exec"
	case SourceProcfs:
		return "procfs"
	}
	return "unknown"
}

// Defaults and bounds of the table's settings.
const (
	// DefaultMaxProcesses is Linux's default pid_max on hosts with up to
	// 32 CPUs: as many processes as such a host can have alive at once.
	DefaultMaxProcesses = 32768
	MinMaxProcesses     = 1
	MaxMaxProcesses     = 1 << 22 // PID_MAX_LIMIT on 64-bit kernels
	DefaultMaxAncestors = 8
	MaxMaxAncestors     = 64
	DefaultArgsBytes    = 1024
	MaxArgsBytes        = bpf.MaxArgsSize // no exec record carries more
)

// Config bounds a table.
type Config struct {
	MaxProcesses int // entries at most; 0 is DefaultMaxProcesses
	MaxAncestors int // ancestors Ancestors returns at most
	// ArgsBytes bounds the arguments kept of each image, counted as argv
	// in memory (each argument and its NUL); 0 keeps none.
	ArgsBytes int
	// Redactor masks secrets in the arguments before they are kept; nil
	// keeps them as they are.
	Redactor *redact.Redactor
}

// Entry is one process. Callers must not modify it or its slices.
type Entry struct {
	// Image names the image as the kernel does; for a SourceProcfs entry
	// ExecSeq is unknown (0) and StartBootNs has /proc's precision (ticks).
	Image  bpf.Image
	PPID   uint32
	Source Source
	// Path is the executable's absolute path ("" for a kernel thread read
	// from /proc); Name its base name (the comm for a kernel thread).
	Path, Name string
	Args       []string // redacted, at most Config.ArgsBytes

	prev, next *Entry // insertion order, for dropping the oldest
}

// Table is the process table.
type Table struct {
	cfg   Config
	procs map[uint32]*Entry
	// head is the oldest entry, tail the newest.
	head, tail *Entry
	dropped    int64

	// Reused by Ancestors.
	pids  []int64
	names []string
}

// New returns an empty table.
func New(cfg Config) *Table {
	if cfg.MaxProcesses <= 0 {
		cfg.MaxProcesses = DefaultMaxProcesses
	}
	return &Table{cfg: cfg, procs: make(map[uint32]*Entry)}
}

// Len is the number of processes held.
func (t *Table) Len() int { return len(t.procs) }

// Dropped is the number of entries dropped at the bound since the last
// call, which resets it.
func (t *Table) Dropped() int64 {
	d := t.dropped
	t.dropped = 0
	return d
}

// Get returns the entry of a process, or nil.
func (t *Table) Get(pid uint32) *Entry { return t.procs[pid] }

// Observe updates the table with one event: a successful exec replaces its
// process's image, a fork adds a child that runs its parent's image, an
// exit forgets the process. Failed execs change nothing.
func (t *Table) Observe(ev *bpf.Event) {
	switch ev.Kind {
	case bpf.KindExec:
		if ev.Failed() {
			return
		}
		e := &Entry{Image: ev.Image, PPID: ev.PPID, Source: SourceExec, Args: t.keepArgs(ev.Args)}
		if ev.Executable.Valid {
			e.Path = ev.Executable.Path
			e.Name = path.Base(e.Path)
		} else {
			e.Name = ev.Comm
		}
		t.put(ev.PID, e)
	case bpf.KindFork:
		parent := t.procs[ev.PPID]
		if parent == nil {
			// Its image is unknown: leave it out, as a process
			// never seen, until it execs.
			t.remove(ev.PID)
			return
		}
		t.put(ev.PID, &Entry{Image: ev.Image, PPID: ev.PPID, Source: parent.Source,
			Path: parent.Path, Name: parent.Name, Args: parent.Args})
	case bpf.KindExit:
		t.remove(ev.PID)
	}
}

// Parent is the entry of the parent of exec ev, and how the table knows it;
// nil and SourceUnknown when it does not hold it, or holds another image
// than the one the kernel says the parent ran at the exec (a lost event).
func (t *Table) Parent(ev *bpf.Event) (*Entry, Source) {
	e := t.procs[ev.PPID]
	if e == nil || ev.PPID == 0 || !e.sameImage(ev.ParentImage) {
		return nil, SourceUnknown
	}
	return e, e.Source
}

// ticksNs is the length of /proc/PID/stat's start-time unit (USER_HZ 100).
const ticksNs = 10_000_000

// sameImage compares with the image the kernel named (zero: not named).
func (e *Entry) sameImage(img bpf.Image) bool {
	if img == (bpf.Image{}) {
		return true
	}
	if e.Source == SourceProcfs {
		return e.Image.StartBootNs/ticksNs == img.StartBootNs/ticksNs
	}
	return e.Image == img
}

// Ancestors returns the ancestors of exec ev, the parent first, up to
// Config.MaxAncestors, as long as the table holds them. The slices are the
// table's, valid until the next call.
func (t *Table) Ancestors(ev *bpf.Event) (pids []int64, names []string) {
	t.pids, t.names = t.pids[:0], t.names[:0]
	if _, src := t.Parent(ev); src == SourceUnknown {
		return nil, nil
	}
	pid := ev.PPID
	for len(t.pids) < t.cfg.MaxAncestors && pid != 0 {
		e := t.procs[pid]
		if e == nil {
			break
		}
		t.pids = append(t.pids, int64(pid))
		t.names = append(t.names, e.Name)
		pid = e.PPID
	}
	return t.pids, t.names
}

// keepArgs copies the redacted arguments that fit in Config.ArgsBytes into
// one allocation (an event's arguments share its buffer, which must not be
// kept); the argument that does not fit is cut, and the rest left out.
func (t *Table) keepArgs(args []string) []string {
	budget := t.cfg.ArgsBytes
	if budget <= 0 || len(args) == 0 {
		return nil
	}
	if t.cfg.Redactor != nil {
		args, _ = t.cfg.Redactor.Args(args)
	}
	n, size := 0, 0
	for _, a := range args {
		// An argument is kept whole, or cut when at least a byte of it
		// fits; the rest are left out.
		if left := budget - size; left < len(a)+1 && left < 2 {
			break
		}
		size += min(len(a)+1, budget-size)
		n++
	}
	var b strings.Builder
	b.Grow(size)
	ends := make([]int, 0, n)
	left := budget
	for _, a := range args[:n] {
		a = a[:min(len(a), left-1)]
		b.WriteString(a)
		left -= len(a) + 1
		ends = append(ends, b.Len())
	}
	all := b.String()
	out := make([]string, n)
	start := 0
	for i, end := range ends {
		out[i] = all[start:end]
		start = end
	}
	return out
}

func (t *Table) put(pid uint32, e *Entry) {
	t.remove(pid)
	for len(t.procs) >= t.cfg.MaxProcesses && t.head != nil {
		t.remove(t.head.Image.PID)
		t.dropped++
	}
	e.Image.PID = pid
	t.procs[pid] = e
	e.prev = t.tail
	if t.tail != nil {
		t.tail.next = e
	} else {
		t.head = e
	}
	t.tail = e
}

func (t *Table) remove(pid uint32) {
	e := t.procs[pid]
	if e == nil {
		return
	}
	delete(t.procs, pid)
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		t.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		t.tail = e.prev
	}
	e.prev, e.next = nil, nil
}
