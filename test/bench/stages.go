//go:build linux

package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
)

// The stage table: where the collector's CPU per exec goes. The same
// storm runs under libbpf-tools execsnoop, the CLI and the collector with
// config/otlp.yaml cut at each stage of its pipeline - the receiver alone
// (a debug exporter that only counts), then OTLP/gRPC to a sink collector
// without compression and with each codec, the file exporter instead, and
// the shipped config under other Go runtime settings - in interleaved
// rounds, each ratio to libbpf-tools taken per round and its median
// reported. A stage's cost is the difference of two rows.

var (
	stagesOnly  = flag.Bool("stages-only", false, "run only the stage table (where the collector's CPU goes), not the other tables")
	stageExecs  = flag.Int("stages-n", 5000, "execs per storm in the stage table")
	stageRounds = flag.Int("stages-rounds", 3, "interleaved rounds of the stage table (0: skip it)")
	// countingSyscalls makes measure count the tracer's syscalls.
	countingSyscalls bool
	perfWarnOnce     bool
)

// stageVariant is one collector configuration of the stage table.
type stageVariant struct {
	name        string
	exporter    string // "debug", "otlp" or "file"
	compression string // otlp only
	env         []string
}

func stageVariants() []stageVariant {
	return []stageVariant{
		{name: "otelcol-execsnoop, receiver only (debug exporter, counts)", exporter: "debug"},
		{name: "otelcol-execsnoop -> OTLP (none)", exporter: "otlp", compression: "none"},
		{name: "otelcol-execsnoop -> OTLP (gzip)", exporter: "otlp", compression: "gzip"},
		{name: "otelcol-execsnoop -> OTLP (zstd)", exporter: "otlp", compression: "zstd"},
		{name: "otelcol-execsnoop -> OTLP (snappy)", exporter: "otlp", compression: "snappy"},
		{name: "otelcol-execsnoop -> file exporter", exporter: "file"},
		{name: "otelcol-execsnoop -> OTLP (shipped), GOMAXPROCS=1", exporter: "otlp", env: []string{"GOMAXPROCS=1"}},
		{name: "otelcol-execsnoop -> OTLP (shipped), GOGC=200", exporter: "otlp", env: []string{"GOGC=200"}},
	}
}

// idleWindow is how long an idle collector is watched.
const idleWindow = 10 * time.Second

// idleUsage is the shipped collector before any storm: CPU over
// idleWindow and its RSS then.
type idleUsage struct {
	cpuMs, rssMiB float64
}

// idleCollector starts the shipped config exporting to a sink and
// measures it idle (the host's own execs go on meanwhile).
func idleCollector(tmp, bin string) idleUsage {
	sinkPort, metricsPort := freePort(), freePort()
	sinkCfg := writeFile(tmp, "idle-sink.yaml", collectortest.SinkConfig(sinkPort, filepath.Join(tmp, "idle-sink.json"), "logs"))
	sink := exec.Command(bin, "--config", sinkCfg)
	sink.Stdout, sink.Stderr = create(filepath.Join(tmp, "idle-sink.log")), create(filepath.Join(tmp, "idle-sink.err"))
	started(sink, fileContains(filepath.Join(tmp, "idle-sink.err"), "Everything is ready"))
	defer stop(sink)
	cfg := writeFile(tmp, "idle-source.yaml", fmt.Sprintf("exporters:\n  otlp_grpc:\n    endpoint: 127.0.0.1:%d\nservice:%s", sinkPort,
		collectortest.TelemetryConfig(metricsPort)))
	source := exec.Command(bin, "--config", "config/otlp.yaml", "--config", cfg)
	errLog := filepath.Join(tmp, "idle-source.err")
	source.Stdout, source.Stderr = create(filepath.Join(tmp, "idle-source.log")), create(errLog)
	started(source, fileContains(errLog, "Everything is ready"))
	defer stop(source)
	before := threadsOf(source.Process.Pid)
	time.Sleep(idleWindow) // the measurement itself: CPU over a fixed window
	u, _ := threadsOf(source.Process.Pid).since(before)
	return idleUsage{cpuMs: float64(u.cpuNs) / 1e6, rssMiB: statusMiB(source.Process.Pid, "VmRSS")}
}

// stageResult is a storm's row with what the stage table adds.
type stageResult struct {
	result
	allocKiBPer1000 float64 // the collector's heap allocations; -1: not known
	wire            wireBytes
}

type stageRow struct {
	round int
	stageResult
}

// stageTable runs the rounds. Within a round the order rotates, so that a
// drift of the machine over a round favours no row.
func stageTable(tmp string, counts []int) ([]stageRow, idleUsage, string, string) {
	saved := *execs
	*execs = *stageExecs
	defer func() { *execs = saved }()
	withSyscallCost, countingSyscalls = false, true
	defer func() { withSyscallCost, countingSyscalls = true, false }()
	cli := filepath.Join(*binDir, "execsnoop")
	col := filepath.Join(*binDir, "otelcol-execsnoop")
	type run struct {
		name string
		do   func(w int) stageResult
	}
	var runs []run
	runs = append(runs, run{"libbpf-tools execsnoop", func(w int) stageResult {
		return stageResult{result: libbpfTools(tmp, w), allocKiBPer1000: -1}
	}})
	runs = append(runs, run{cliName, func(w int) stageResult {
		return stageResult{result: cliJSON(tmp, cli, cliName, "ringbuf", w), allocKiBPer1000: -1}
	}})
	for _, v := range stageVariants() {
		runs = append(runs, run{v.name, func(w int) stageResult { return collectorStage(tmp, col, v, w) }})
	}
	loadStart := loadavg()
	idle := idleCollector(tmp, col)
	progress("idle collector (config/otlp.yaml): %.1f ms of CPU in %v, RSS %.1f MiB", idle.cpuMs, idleWindow, idle.rssMiB)
	var rows []stageRow
	for round := 1; round <= *stageRounds; round++ {
		for _, w := range counts {
			order := slices.Clone(runs)
			k := (round - 1) % len(order)
			order = append(order[k:], order[:k]...)
			for _, r := range order {
				res := r.do(w)
				res.tracer, res.workers = r.name, w
				progress("stages round %d, %d workers, %s: %d/%d captured, lost %s, %.1f ms CPU, %.0f switches, %.0f syscalls, %.0f KiB allocated /1000 execs",
					round, w, r.name, res.captured, *execs, res.lost, res.cpuPer1000, res.switchesPer1000, res.syscallsPer1000, res.allocKiBPer1000)
				rows = append(rows, stageRow{round, res})
			}
		}
	}
	return rows, idle, loadStart, loadavg()
}

// countSyscalls counts the syscalls of pid's threads with perf stat
// (Debian's linux-perf, installed by make deps) until the returned
// function is called; -1 when perf is missing or fails.
func countSyscalls(pid int) func() float64 {
	out, err := os.CreateTemp("", "execsnoop-bench-perf-")
	check(err)
	out.Close()
	cmd := exec.Command("perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", strconv.Itoa(pid), "-o", out.Name())
	if err := cmd.Start(); err != nil {
		if !perfWarnOnce {
			progress("no syscall counts: cannot run perf (%v); install linux-perf (make deps)", err)
			perfWarnOnce = true
		}
		return func() float64 { return -1 }
	}
	// A storm started before perf attached would be undercounted.
	waitPerfAttached(cmd.Process.Pid)
	return func() float64 {
		defer os.Remove(out.Name())
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		raw, _ := os.ReadFile(out.Name())
		for _, line := range strings.Split(string(raw), "\n") {
			f := strings.Split(line, ",")
			if len(f) > 2 && f[2] == "raw_syscalls:sys_enter" {
				if n, err := strconv.ParseFloat(f[0], 64); err == nil {
					return n
				}
			}
		}
		if !perfWarnOnce {
			progress("no syscall counts: perf stat wrote %q", strings.TrimSpace(string(raw)))
			perfWarnOnce = true
		}
		return -1
	}
}

// waitPerfAttached waits until perf holds a perf_event fd (it opens them
// when it attaches), for 10 s at most.
func waitPerfAttached(perfPid int) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", perfPid))
		for _, fd := range fds {
			if target, _ := os.Readlink(fd); target == "anon_inode:[perf_event]" {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// collectorStage runs the collector with config/otlp.yaml and v's cut.
func collectorStage(tmp, bin string, v stageVariant, workers int) stageResult {
	metricsPort := freePort()
	sinkOut := filepath.Join(tmp, "stage-sink.json")
	fileOut := filepath.Join(tmp, "stage-file.json")
	_ = os.Remove(sinkOut)
	_ = os.Remove(fileOut)
	overlay := "exporters:\n"
	switch v.exporter {
	case "debug":
		overlay += "  debug:\n    verbosity: basic\n"
	case "file":
		overlay += fmt.Sprintf("  file:\n    path: %s\n", fileOut)
	case "otlp":
		sinkPort := freePort()
		sinkCfg := writeFile(tmp, "stage-sink.yaml", collectortest.SinkConfig(sinkPort, sinkOut, "logs"))
		sink := exec.Command(bin, "--config", sinkCfg)
		sinkLog := filepath.Join(tmp, "stage-sink.log")
		sink.Stdout, sink.Stderr = create(sinkLog), create(sinkLog+".out")
		started(sink, fileContains(sinkLog+".out", "Everything is ready"))
		defer stop(sink)
		overlay += fmt.Sprintf("  otlp_grpc:\n    endpoint: 127.0.0.1:%d\n", sinkPort)
		// The sink is stopped after the source has sent all.
		if v.compression != "" {
			overlay += "    compression: " + v.compression + "\n"
		}
	}
	overlay += "service:" + collectortest.TelemetryConfig(metricsPort)
	if v.exporter != "otlp" {
		overlay += fmt.Sprintf("  pipelines:\n    logs:\n      exporters: [%s]\n", v.exporter)
	}
	sourceCfg := writeFile(tmp, "stage-source.yaml", overlay)
	sourceLog := filepath.Join(tmp, "stage-source.log")
	source := exec.Command(bin, "--config", "config/otlp.yaml", "--config", sourceCfg)
	source.Env = append(os.Environ(), v.env...)
	source.Stdout, source.Stderr = create(sourceLog), create(sourceLog+".err")
	started(source, fileContains(sourceLog+".err", "Everything is ready"))
	alloc0 := collectortest.Metric(metricsPort, "otelcol_process_runtime_total_alloc_bytes")
	s, u := measure(source.Process.Pid, workers, "stage")
	alloc := collectortest.Metric(metricsPort, "otelcol_process_runtime_total_alloc_bytes") - alloc0
	rss := peakRSSMiB(source.Process.Pid)
	lost := collectortest.Metric(metricsPort, "otelcol_execsnoop_receiver_events_lost")
	stop(source)
	per1000 := 1000 / float64(*execs)
	r := stageResult{result: result{rate: s.rate, lost: strconv.Itoa(int(lost)), peakRSSMiB: rss, usage: u},
		allocKiBPer1000: alloc / 1024 * per1000}
	switch v.exporter {
	case "otlp":
		r.captured = waitCaptured(sinkOut, s.marker)
		codec := v.compression
		if codec == "" {
			codec = shippedCompression()
		}
		r.wire = measureWire(sinkOut, codec)
		// Kept for the codec table.
		check(os.Rename(sinkOut, filepath.Join(tmp, "stage-last-sink.json")))
	case "file":
		r.captured = waitCaptured(fileOut, s.marker)
	default:
		// Nothing is exported to count.
		r.captured = -1
	}
	return r
}

// waitCaptured counts the storm's records in a file exporter's output,
// waiting up to 10 s for its last flush.
func waitCaptured(path, marker string) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := sinkRecords(path, marker)
		if n >= *execs || time.Now().After(deadline) {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func renderStages(rows []stageRow, idle idleUsage, counts []int, loadStart, loadEnd string) string {
	var b strings.Builder
	uname, _ := exec.Command("uname", "-r").Output()
	fmt.Fprintf(&b, "\nWhere the collector's CPU goes, %s, kernel %s, %d CPUs, load average (1, 5, 15 min) %s at the start and %s at the end: "+
		"%d interleaved rounds of storms of %d execs of /bin/true under libbpf-tools execsnoop, the CLI and the collector running config/otlp.yaml "+
		"cut at each stage (a stage's cost is the difference of two rows). CPU and switches: the tracer's threads (schedstat, status). "+
		"Syscalls: perf stat's raw_syscalls:sys_enter of the tracer's threads. Allocated: the collector's heap allocations "+
		"(otelcol_process_runtime_total_alloc_bytes). Wire bytes: the sink's requests, marshalled again to OTLP protobuf and compressed "+
		"by the codec the collector uses (bytes per record; gRPC framing not counted). "+
		"The collector rows run the telemetry at level detailed with a Prometheus reader, to be read.\n\n",
		time.Now().UTC().Format("2006-01-02"), strings.TrimSpace(string(uname)), numCPU(), loadStart, loadEnd, *stageRounds, *stageExecs)
	fmt.Fprintf(&b, "Idle, before the storms: the collector with config/otlp.yaml used %.1f ms of CPU in %v (the host's own execs included) at %.1f MiB RSS.\n\n",
		idle.cpuMs, idleWindow, idle.rssMiB)
	b.WriteString("| round | workers | tracer | captured | lost | CPU ms / 1000 execs | switches / 1000 | syscalls / 1000 | allocated KiB / 1000 | wire bytes / record | peak RSS MiB |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		captured := "-"
		if r.captured >= 0 {
			captured = fmt.Sprintf("%d / %d", r.captured, *stageExecs)
		}
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %.1f | %s | %s | %s | %s | %.1f |\n", r.round, r.workers, r.tracer, captured, r.lost,
			r.cpuPer1000, r.switchesCell(), orDash(r.syscallsPer1000), orDash(r.allocKiBPer1000), r.wire.cell(), r.peakRSSMiB)
	}
	b.WriteString("\nCPU per exec over libbpf-tools execsnoop's, per round, and the median (target: at most).\n\n")
	b.WriteString("| workers | tracer |")
	for round := 1; round <= *stageRounds; round++ {
		fmt.Fprintf(&b, " round %d |", round)
	}
	b.WriteString(" median | median switches / 1000 | median syscalls / 1000 | target | met |\n|---|---|" + strings.Repeat("---|", *stageRounds) + "---|---|---|---|---|\n")
	names := []string{cliName}
	for _, v := range stageVariants() {
		names = append(names, v.name)
	}
	for _, w := range counts {
		for _, name := range names {
			var ratios, switches, syscalls []float64
			fmt.Fprintf(&b, "| %d | %s |", w, name)
			for round := 1; round <= *stageRounds; round++ {
				num, den := findStage(rows, round, w, name), findStage(rows, round, w, "libbpf-tools execsnoop")
				if num == nil || den == nil || den.cpuPer1000 == 0 {
					b.WriteString(" - |")
					continue
				}
				ratio := num.cpuPer1000 / den.cpuPer1000
				ratios = append(ratios, ratio)
				switches = append(switches, num.switchesPer1000)
				if num.syscallsPer1000 >= 0 {
					syscalls = append(syscalls, num.syscallsPer1000)
				}
				fmt.Fprintf(&b, " %.2f |", ratio)
			}
			med := median(ratios)
			target, met := "-", "-"
			if t := stageTarget(name); t > 0 {
				target, met = fmt.Sprintf("%.2f", t), "no"
				if len(ratios) > 0 && med <= t {
					met = "yes"
				}
			}
			fmt.Fprintf(&b, " %s | %s | %s | %s | %s |\n", fmtRatio(med, len(ratios)), fmtCount(median(switches), len(switches)),
				fmtCount(median(syscalls), len(syscalls)), target, met)
		}
	}
	return b.String()
}

// stageTarget is issue #23's target for a row: the shipped OTLP config at
// most 0.5x libbpf-tools' CPU per exec, the file exporter 0.4x.
func stageTarget(name string) float64 {
	switch {
	case name == "otelcol-execsnoop -> OTLP ("+shippedCompression()+")":
		return 0.5
	case name == "otelcol-execsnoop -> file exporter":
		return 0.4
	}
	return 0
}

// shippedCompression is config/otlp.yaml's otlp_grpc compression (gzip,
// the exporter's default, when it sets none).
func shippedCompression() string {
	raw, err := os.ReadFile("config/otlp.yaml")
	check(err)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "compression:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "gzip"
}

func findStage(rows []stageRow, round, workers int, tracer string) *stageResult {
	for i := range rows {
		if rows[i].round == round && rows[i].workers == workers && rows[i].tracer == tracer {
			return &rows[i].stageResult
		}
	}
	return nil
}

func orDash(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtCount(v float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}
