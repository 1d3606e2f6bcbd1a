package proctable

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Running is what /proc tells of one process.
type Running struct {
	PID, PPID uint32
	// StartTicks is the start in clock ticks (USER_HZ) since boot.
	StartTicks uint64
	Comm       string
	// Exe is /proc/PID/exe's target without " (deleted)", "" when
	// unreadable (a kernel thread); Args is /proc/PID/cmdline split.
	Exe  string
	Args []string
}

// ReadProc reads the processes under procRoot (normally "/proc"), oldest
// first, so that parents come before their children. A process that exits
// while it is read is left out.
func ReadProc(procRoot string) ([]Running, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	var procs []Running
	for _, e := range entries {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || pid == 0 {
			continue
		}
		dir := filepath.Join(procRoot, e.Name())
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // it exited meanwhile
		}
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		// The comm in parentheses may hold spaces: fields follow the last ')'.
		fields := strings.Fields(string(stat[end+1:]))
		if len(fields) < 20 {
			continue
		}
		ppid, _ := strconv.ParseUint(fields[1], 10, 32)
		ticks, _ := strconv.ParseUint(fields[19], 10, 64)
		p := Running{PID: uint32(pid), PPID: uint32(ppid), StartTicks: ticks, Comm: string(stat[open+1 : end])}
		if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
			p.Exe = strings.TrimSuffix(exe, " (deleted)")
		}
		if cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline")); len(cmdline) > 0 {
			p.Args = strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		}
		procs = append(procs, p)
	}
	slices.SortStableFunc(procs, func(a, b Running) int {
		if a.StartTicks != b.StartTicks {
			return compare(a.StartTicks, b.StartTicks)
		}
		return compare(a.PID, b.PID)
	})
	return procs, nil
}

func compare[T uint32 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// LoadProc adds the processes running under procRoot as SourceProcfs
// entries; a process the table already holds (its exec or fork was seen
// meanwhile) is kept as it is. It returns how many it added.
func (t *Table) LoadProc(procRoot string) (int, error) {
	procs, err := ReadProc(procRoot)
	if err != nil {
		return 0, err
	}
	return t.Load(procs), nil
}

// Load adds running processes, oldest first, as SourceProcfs entries.
func (t *Table) Load(procs []Running) int {
	added := 0
	for _, p := range procs {
		if t.procs[p.PID] != nil {
			continue
		}
		e := &Entry{PPID: p.PPID, Source: SourceProcfs, Path: p.Exe, Args: t.keepArgs(p.Args)}
		e.Image.StartBootNs = p.StartTicks * ticksNs
		if p.Exe != "" {
			e.Name = filepath.Base(p.Exe)
		} else {
			e.Name = p.Comm
		}
		t.put(p.PID, e)
		added++
	}
	return added
}
