//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

// The cost of the TRACEPARENT lookup and of the exit accounting: storms
// whose processes carry a CI-like environment (envBytes of variables, no
// TRACEPARENT, so that every lookup reads all of it), without a tracer and
// under the probe itself (exec and exit records, the reader counting them)
// with the lookup off and on. The kernel's own statistics time each BPF
// program per run.
const envBytes = 16 << 10

type ctxResult struct {
	name             string
	workers          int
	rate, slowdown   float64
	captured         int
	lost             uint64
	execNs, exitNs   float64 // BPF run time per run
	readerCPUPer1000 float64 // the reading goroutine's process, ms per 1000 execs
}

func envStorm(workers int, name string) stormResult {
	marker := fmt.Sprintf("bench%s%d", name, nowNano())
	out, err := exec.Command(filepath.Join(*binDir, "execstorm"), "-workers", strconv.Itoa(workers),
		"-n", strconv.Itoa(*execs), "-marker", marker, "-env-bytes", strconv.Itoa(envBytes)).Output()
	check(err)
	return parseStorm(out, marker)
}

// probeRun runs one storm under the probe and measures it.
func probeRun(workers int, lookup bool) ctxResult {
	name := "probe, exits, no lookup"
	if lookup {
		name = "probe, exits, TRACEPARENT lookup (32 KiB budget)"
	}
	p, err := bpf.Open(bpf.Options{Exits: true, TraceContext: lookup})
	check(err)
	stats, err := bpf.EnableProgramStats()
	check(err)
	var marker atomic.Pointer[string]
	empty := "\x00"
	marker.Store(&empty)
	var captured atomic.Int64
	done := make(chan error, 1)
	go func() {
		var ev bpf.Event
		for {
			err := p.Read(&ev)
			switch {
			case errors.Is(err, bpf.ErrDrained):
				continue
			case err != nil:
				done <- err
				return
			}
			if ev.Kind == bpf.KindExec && len(ev.Args) == 2 && strings.HasPrefix(ev.Args[1], *marker.Load()+"-") {
				captured.Add(1)
			}
		}
	}()
	before, err := p.ProgramStats()
	check(err)
	cpu0 := selfCPUSeconds()
	// The storm's marker is only known when it starts; the storm names it.
	m := fmt.Sprintf("benchprobe%d", nowNano())
	marker.Store(&m)
	out, err := exec.Command(filepath.Join(*binDir, "execstorm"), "-workers", strconv.Itoa(workers),
		"-n", strconv.Itoa(*execs), "-marker", m, "-env-bytes", strconv.Itoa(envBytes)).Output()
	check(err)
	s := parseStorm(out, m)
	after, err := p.ProgramStats()
	check(err)
	check(p.Stop())
	if err := <-done; !errors.Is(err, bpf.ErrClosed) {
		check(err)
	}
	cpu := selfCPUSeconds() - cpu0
	lost := p.Stats().Lost()
	check(p.Close())
	check(stats.Close())
	per := func(name string) float64 {
		runs := after[name].Runs - before[name].Runs
		if runs == 0 {
			return 0
		}
		return float64(after[name].RunTime-before[name].RunTime) / float64(runs)
	}
	return ctxResult{name: name, workers: workers, rate: s.rate, captured: int(captured.Load()), lost: lost,
		execNs: per("handle_exec"), exitNs: per("handle_exit"), readerCPUPer1000: 1000 * 1000 * cpu / float64(*execs)}
}

// traceContextBench runs, per worker count: env storm, probe without the
// lookup, env storm, probe with it, env storm; each probe row's slowdown is
// against the mean of the storms around it.
func traceContextBench(workerCounts []int) []ctxResult {
	var rows []ctxResult
	for _, w := range workerCounts {
		before := envStorm(w, "env").rate
		sum, n := before, 1
		var probeRows []ctxResult
		for _, lookup := range []bool{false, true} {
			r := probeRun(w, lookup)
			after := envStorm(w, "env").rate
			r.slowdown = 100 * (1 - r.rate/((before+after)/2))
			sum, n = sum+after, n+1
			before = after
			progress("%d workers, %s, %d-byte environments: %.0f execs/s (%.1f%% slower), %d/%d captured, lost %d, exec %.0f ns, exit %.0f ns",
				w, r.name, envBytes, r.rate, r.slowdown, r.captured, *execs, r.lost, r.execNs, r.exitNs)
			probeRows = append(probeRows, r)
		}
		rows = append(rows, ctxResult{name: "none", workers: w, rate: sum / float64(n)})
		rows = append(rows, probeRows...)
	}
	return rows
}

func renderTraceContext(rows []ctxResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nTRACEPARENT lookup and exit accounting: storms of %d execs whose processes carry %d bytes of environment "+
		"(no TRACEPARENT: every lookup reads it all), under the probe in the bench process (exec and exit records, counted). "+
		"BPF ns: the kernel's run-time statistics per run of the exec and exit programs; the lookup's cost is the difference "+
		"of the exec column, the exit accounting is inside the exit column.\n\n", *execs, envBytes)
	b.WriteString("| workers | tracer | execs/s | slowdown | captured | lost | exec program ns | exit program ns | reader CPU ms / 1000 execs |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.name == "none" {
			fmt.Fprintf(&b, "| %d | none | %.0f | - | - | - | - | - | - |\n", r.workers, r.rate)
			continue
		}
		fmt.Fprintf(&b, "| %d | %s | %.0f | %.1f%% | %d / %d | %d | %.0f | %.0f | %.1f |\n",
			r.workers, r.name, r.rate, r.slowdown, r.captured, *execs, r.lost, r.execNs, r.exitNs, r.readerCPUPer1000)
	}
	return b.String()
}

func parseStorm(out []byte, marker string) stormResult {
	var r struct{ Rate float64 }
	check(json.Unmarshal(out, &r))
	return stormResult{rate: r.Rate, marker: marker}
}

func nowNano() int64 { return time.Now().UnixNano() }

// selfCPUSeconds is the bench process's own CPU time, where the probe's
// reader runs.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
