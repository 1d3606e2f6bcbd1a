package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's start time; 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// runningProcess is what /proc tells of a process for adopting it.
type runningProcess struct {
	pid, ppid uint32
	start     time.Time
	exe       string
	args      []string
}

// bootTime is when the system booted, from /proc/uptime (the boot-time
// clock, the one /proc/PID/stat's start times count from).
func bootTime(procRoot string) (time.Time, error) {
	raw, err := os.ReadFile(filepath.Join(procRoot, "uptime"))
	if err != nil {
		return time.Time{}, err
	}
	seconds, err := strconv.ParseFloat(strings.Fields(string(raw))[0], 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Now().Add(-time.Duration(seconds * float64(time.Second))), nil
}

// runningProcesses reads the processes under procRoot, oldest first, so
// that parents come before their children.
func runningProcesses(procRoot string, bootTime time.Time) []runningProcess {
	entries, _ := os.ReadDir(procRoot)
	var procs []runningProcess
	for _, e := range entries {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		dir := filepath.Join(procRoot, e.Name())
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // it exited meanwhile
		}
		// The comm in parentheses may hold spaces: fields follow the last ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 20 {
			continue
		}
		ppid, _ := strconv.ParseUint(fields[1], 10, 32)
		ticks, _ := strconv.ParseUint(fields[19], 10, 64)
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		if len(cmdline) == 0 {
			continue // a kernel thread, or gone
		}
		args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		// argv[0] stands for the filename an exec event would carry: the
		// name as run (/bin/sh), not where a link resolves (/usr/bin/dash).
		procs = append(procs, runningProcess{
			pid: uint32(pid), ppid: uint32(ppid), exe: args[0], args: args,
			start: bootTime.Add(time.Duration(ticks) * time.Second / clockTicks),
		})
	}
	slices.SortFunc(procs, func(a, b runningProcess) int { return a.start.Compare(b.start) })
	return procs
}

// adopt opens spans for running processes as if their execs had been seen
// now: roots start traces and descendants of tracked processes join them.
func (t *spanTracker) adopt(procs []runningProcess, done spanDone) int {
	adopted := 0
	for _, p := range procs {
		ev := bpf.Event{Kind: bpf.KindExec, PID: p.pid, TID: p.pid, PPID: p.ppid, Filename: p.exe,
			Args: p.args, Argc: uint32(len(p.args)), Time: p.start}
		t.exec(&ev, done)
		if s, ok := t.open[p.pid]; ok {
			s.span.SetStartTimestamp(pcommon.NewTimestampFromTime(p.start))
			procattr.MarkAdopted(pmapSink(s.span.Attributes()))
			adopted++
		}
	}
	return adopted
}
