//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPU time and context switches of a tracer process, summed over its
// threads: /proc/PID/task/TID/schedstat's time on CPU (nanoseconds, where
// /proc/PID/stat's user+sys comes in 10 ms ticks, too coarse for a 10%
// target over a few thousand execs) and status's voluntary_ctxt_switches
// and nonvoluntary_ctxt_switches (/proc/PID/status has only the main
// thread's). What threads that exit did is kept only in the process's
// rusage, which /proc does not show for another process: so a storm's
// numbers are those of the threads alive at its end (a thread born during
// it counts from zero), and the threads that ended are counted apart - if
// any did, the numbers are low by theirs.
type threadUsage struct {
	cpuNs, switches int64
}

type threads map[int]threadUsage // by thread id

func threadsOf(pid int) threads {
	out := threads{}
	dirs, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, dir := range dirs {
		tid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, "status"))
		sched, serr := os.ReadFile(filepath.Join(dir, "schedstat"))
		if err != nil || serr != nil {
			continue // the thread ended between the listing and the read
		}
		var u threadUsage
		if f := strings.Fields(string(sched)); len(f) > 0 {
			u.cpuNs, _ = strconv.ParseInt(f[0], 10, 64)
		}
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			for _, key := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if v, ok := bytes.CutPrefix(sc.Bytes(), []byte(key)); ok {
					c, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
					u.switches += c
				}
			}
		}
		out[tid] = u
	}
	return out
}

// since returns what the threads alive now did after before, and how
// many of before's threads have ended (what they did is lost).
func (t threads) since(before threads) (u threadUsage, ended int) {
	for tid, now := range t {
		u.cpuNs += now.cpuNs - before[tid].cpuNs
		u.switches += now.switches - before[tid].switches
	}
	for tid := range before {
		if _, ok := t[tid]; !ok {
			ended++
		}
	}
	return u, ended
}

// settle waits until a tracer's start-up work (a scan of /proc, the first
// hashes) is done, so that a storm is not charged with it: until its
// threads use under 5% of a CPU over 200 ms, for at most 10 s (on a busy
// host it may never get so quiet; the storm then starts anyway).
func settle(pid int) {
	const window, quiet = 200 * time.Millisecond, 0.05
	deadline := time.Now().Add(10 * time.Second)
	prev := threadsOf(pid)
	for {
		time.Sleep(window)
		now := threadsOf(pid)
		u, _ := now.since(prev)
		if float64(u.cpuNs) < quiet*float64(window.Nanoseconds()) {
			return
		}
		if time.Now().After(deadline) {
			progress("pid %d still used %.0f ms of CPU in %v after 10 s; starting the storm anyway", pid, float64(u.cpuNs)/1e6, window)
			return
		}
		prev = now
	}
}
