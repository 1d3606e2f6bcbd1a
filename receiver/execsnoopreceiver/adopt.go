package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/proctable"
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

// runningProcesses reads the processes under procRoot (proctable.ReadProc,
// the one reader of /proc), oldest first, so that parents come before
// their children; kernel threads, which have no argv, are left out.
func runningProcesses(procRoot string, bootTime time.Time) []runningProcess {
	running, _ := proctable.ReadProc(procRoot)
	var procs []runningProcess
	for _, p := range running {
		if len(p.Args) == 0 {
			continue // a kernel thread, or gone
		}
		// argv[0] stands for the filename an exec event would carry: the
		// name as run (/bin/sh), not where a link resolves (/usr/bin/dash).
		procs = append(procs, runningProcess{
			pid: p.PID, ppid: p.PPID, exe: p.Args[0], args: p.Args,
			start: bootTime.Add(time.Duration(p.StartTicks) * time.Second / clockTicks),
		})
	}
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
