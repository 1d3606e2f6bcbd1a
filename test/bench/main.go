//go:build linux

// Command bench runs exec storms without a tracer and under each tracer -
// libbpf-tools execsnoop (the C reference), bin/execsnoop --json and
// otelcol-execsnoop exporting over OTLP to a sink collector, the last two
// on both transports - and prints a markdown table: storm rate and slowdown,
// events captured of those expected (by marker), lost events, the tracer's
// CPU time and context switches per 1000 execs, its peak RSS, its BPF
// programs' run time per run, and for the collector the p99 delay from the
// exec to the receiver reading it. With -before it then compares the CLI
// and the collector of an earlier commit with the current ones (before.go).
// `make bench` runs it.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

var (
	execs       = flag.Int("n", 10000, "execs per storm")
	workers     = flag.String("workers", "1,2", "comma-separated worker counts, one storm series each")
	binDir      = flag.String("bin", "bin", "directory with execstorm, execsnoop and otelcol-execsnoop")
	outFile     = flag.String("out", "bench/results.md", "where to write the markdown table")
	only        = flag.String("only", "", "run only the tracers whose name contains this")
	rounds      = flag.Int("rounds", 3, "interleaved rounds of the before/after comparison")
	before      = flag.String("before", "07892c5", "commit whose CLI and collector to compare with (empty: no comparison)")
	compareOnly = flag.Bool("compare-only", false, "run only the before/after rounds, not the table of every tracer")
)

type result struct {
	tracer       string
	workers      int
	rate         float64
	slowdown     float64 // vs the same run's no-tracer storm, percent
	captured     int
	lost         string
	peakRSSMiB   float64
	p99LatencyMs float64 // exec to reader, collector only
	hasLatency   bool
	syscallNs    float64 // getppid(2) while the tracer runs
	usage
}

// usage is what the tracer process spent on one storm.
type usage struct {
	cpuPer1000      float64 // ms on CPU per 1000 execs, summed over the threads
	switchesPer1000 float64 // context switches of its threads per 1000 execs
	threadsEnded    int     // threads that ended during the storm: their CPU and switches are not counted
	syscallsPer1000 float64 // its threads' syscalls per 1000 execs, when counted (stages.go); else -1
	progs           progRuns
}

func main() {
	flag.Parse()
	if os.Geteuid() != 0 {
		fail("bench loads BPF programs: run it as root")
	}
	tmp, err := os.MkdirTemp("", "execsnoop-bench-")
	check(err)
	defer os.RemoveAll(tmp)
	cleanup = ensureTracefs()
	defer cleanup()
	// The kernel's run time of every BPF program, for the whole run.
	stats, err := bpf.EnableProgramStats()
	if err != nil {
		fail("enabling the kernel's BPF statistics: %v", err)
	}
	defer stats.Close()

	var counts []int
	for _, w := range strings.Split(*workers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		check(err)
		counts = append(counts, n)
	}
	table := ""
	if *stagesOnly {
		*compareOnly, *rounds = true, 0
	}
	if !*compareOnly {
		load := loadavg()
		table = render(tracerTable(tmp, counts), load)
		if strings.Contains("probe", *only) {
			table += renderTraceContext(traceContextBench(counts))
		}
	}
	if *before != "" && *rounds > 0 {
		table += renderCompare(compare(tmp, counts), counts)
	}
	if *stageRounds > 0 {
		rows, idle, loadStart, loadEnd := stageTable(tmp, counts)
		table += renderStages(rows, idle, counts, loadStart, loadEnd)
		table += renderCodecs(codecTable(filepath.Join(tmp, "stage-last-sink.json")))
	}
	table = strings.TrimLeft(table, "\n")
	fmt.Print(table)
	check(os.MkdirAll(filepath.Dir(*outFile), 0o755))
	check(os.WriteFile(*outFile, []byte(table), 0o644))
	progress("wrote %s", *outFile)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// cleanup undoes what main changed on the host; fail runs it too, after
// stopping the tracers still running.
var (
	cleanup = func() {}
	running = map[*exec.Cmd]bool{}
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	for cmd := range running {
		_ = cmd.Process.Kill()
	}
	cleanup()
	os.Exit(1)
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

// ensureTracefs mounts tracefs for libbpf-tools' execsnoop, whose
// tracepoints need it (ours do not), and returns how to undo that.
func ensureTracefs() func() {
	if _, err := os.Stat("/sys/kernel/tracing/events"); err == nil {
		return func() {}
	}
	if err := syscall.Mount("nodev", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		progress("cannot mount tracefs (%v): libbpf-tools execsnoop will fail", err)
		return func() {}
	}
	return func() { _ = syscall.Unmount("/sys/kernel/tracing", 0) }
}

type stormResult struct {
	rate   float64
	marker string
}

func storm(workers int, name string) stormResult {
	marker := fmt.Sprintf("bench%s%d", strings.ReplaceAll(name, "-", ""), time.Now().UnixNano())
	out, err := exec.Command(filepath.Join(*binDir, "execstorm"), "-workers", strconv.Itoa(workers),
		"-n", strconv.Itoa(*execs), "-marker", marker).Output()
	check(err)
	var r struct{ Rate float64 }
	check(json.Unmarshal(out, &r))
	return stormResult{rate: r.Rate, marker: marker}
}

// peakRSSMiB is the process's VmHWM.
func peakRSSMiB(pid int) float64 { return statusMiB(pid, "VmHWM") }

// statusMiB is a kB field of /proc/PID/status (VmHWM, VmRSS) in MiB; 0
// when the process is gone.
func statusMiB(pid int, field string) float64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(raw)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb / 1024
}

// tracer runs one storm under a tracer and measures it.
type tracer struct {
	name string
	run  func(workers int) result
}

func tracers(tmp string) []tracer {
	cli := filepath.Join(*binDir, "execsnoop")
	current := otelcol{filepath.Join(*binDir, "otelcol-execsnoop"), "config/otlp.yaml"}
	list := []tracer{{"libbpf-tools execsnoop", func(w int) result { return libbpfTools(tmp, w) }}}
	for _, tr := range []string{"ringbuf", "perf"} {
		name := "execsnoop --json (" + tr + ")"
		list = append(list, tracer{name, func(w int) result { return cliJSON(tmp, cli, name, tr, w) }})
	}
	// A quarter of the default drain period: what lower latency costs,
	// since each drain, not each event, is most of the CLI's CPU.
	shortDrain := "execsnoop --json --drain-period 50ms (ringbuf)"
	list = append(list, tracer{shortDrain, func(w int) result {
		return cliJSON(tmp, cli, shortDrain, "ringbuf", w, "--drain-period", "50ms")
	}})
	// -x adds the syscall-exit hook that sees failed execs.
	failed := "execsnoop -x --json (ringbuf)"
	list = append(list, tracer{failed, func(w int) result { return cliJSON(tmp, cli, failed, "ringbuf", w, "-x") }})
	// The otlp exporter's default compression is gzip; snappy costs a
	// fraction of its CPU and is what an agent sending to a gateway
	// collector would pick. Each runs config/otlp.yaml as shipped (requests
	// bounded by bytes in the exporter); one row runs the batch processor
	// by count that it replaced, to show what the byte bound costs.
	for _, c := range []struct{ transport, compression string }{{"ringbuf", "gzip"}, {"perf", "gzip"}, {"ringbuf", "snappy"}} {
		name := fmt.Sprintf("otelcol-execsnoop -> OTLP (%s, %s)", c.transport, c.compression)
		list = append(list, tracer{name, func(w int) result { return collector(tmp, current, c.transport, c.compression, byBytes, name, w) }})
	}
	countName := "otelcol-execsnoop -> OTLP (ringbuf, gzip, batch processor by count)"
	list = append(list, tracer{countName, func(w int) result { return collector(tmp, current, "ringbuf", "gzip", byCount, countName, w) }})
	return list
}

// started runs a tracer process and waits until its output says it is ready.
func started(cmd *exec.Cmd, ready func() bool) {
	check(cmd.Start())
	running[cmd] = true
	deadline := time.Now().Add(30 * time.Second)
	for !ready() {
		if time.Now().After(deadline) {
			fail("%s did not start", cmd.Path)
		}
		time.Sleep(20 * time.Millisecond)
	}
	settle(cmd.Process.Pid)
}

// measure runs the storm between two readings of the tracer's threads
// (CPU time, context switches) and its BPF programs' statistics.
func measure(pid, workers int, name string) (stormResult, usage) {
	// The targets are for a warm hash cache: the storm's own binaries
	// (execstorm, /bin/true) are hashed by a few execs first, not in the
	// storm.
	warm, err := exec.Command(filepath.Join(*binDir, "execstorm"), "-workers", "1", "-n", "3", "-marker", "warmup").Output()
	if err != nil {
		fail("warming the tracer's hash cache: execstorm: %v (%s)", err, warm)
	}
	settle(pid)
	stopCount := func() float64 { return -1 }
	if countingSyscalls {
		stopCount = countSyscalls(pid)
	}
	threads0, progs0 := threadsOf(pid), tracerPrograms(pid)
	s := storm(workers, name)
	time.Sleep(300 * time.Millisecond) // the last drain
	t, ended := threadsOf(pid).since(threads0)
	per1000 := 1000 / float64(*execs)
	u := usage{cpuPer1000: float64(t.cpuNs) / 1e6 * per1000, switchesPer1000: float64(t.switches) * per1000,
		threadsEnded: ended, progs: programsSince(tracerPrograms(pid), progs0), syscallsPer1000: -1}
	if n := stopCount(); n >= 0 {
		u.syscallsPer1000 = n * per1000
	}
	return s, u
}

// syscallCost is skipped in the before/after rounds, which do not report it.
var withSyscallCost = true

// syscallCost times getppid(2): what every syscall on the host pays while
// a tracer hooks syscall exits (failed execs are only seen there).
func syscallCost() float64 {
	if !withSyscallCost {
		return 0
	}
	out, err := exec.Command(filepath.Join(*binDir, "execstorm"), "-syscalls", "3000000").Output()
	check(err)
	var r struct {
		NsPerSyscall float64 `json:"ns_per_syscall"`
	}
	check(json.Unmarshal(out, &r))
	return r.NsPerSyscall
}

func stop(cmd *exec.Cmd) {
	delete(running, cmd)
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func countMarker(path, marker string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() { // one line an event; the marker may appear twice in it
		if bytes.Contains(sc.Bytes(), []byte(marker+"-")) {
			n++
		}
	}
	return n
}

func fileContains(path, s string) func() bool {
	return func() bool {
		raw, _ := os.ReadFile(path)
		return bytes.Contains(raw, []byte(s))
	}
}

func libbpfTools(tmp string, workers int) result {
	out, errOut := filepath.Join(tmp, "libbpf.out"), filepath.Join(tmp, "libbpf.err")
	// Line-buffered, so that its header shows it is ready.
	cmd := exec.Command("stdbuf", "-oL", "/usr/sbin/execsnoop")
	cmd.Stdout, cmd.Stderr = create(out), create(errOut)
	started(cmd, fileContains(out, "PCOMM"))
	s, u := measure(cmd.Process.Pid, workers, "libbpf")
	rss := peakRSSMiB(cmd.Process.Pid)
	sys := syscallCost()
	stop(cmd)
	lost := 0
	raw, _ := os.ReadFile(errOut)
	for _, m := range regexp.MustCompile(`Lost (\d+) events`).FindAllSubmatch(raw, -1) {
		n, _ := strconv.Atoi(string(m[1]))
		lost += n
	}
	return result{tracer: "libbpf-tools execsnoop", rate: s.rate, captured: countMarker(out, s.marker),
		lost: strconv.Itoa(lost), peakRSSMiB: rss, syscallNs: sys, usage: u}
}

func create(path string) *os.File {
	f, err := os.Create(path)
	check(err)
	return f
}

// cliJSON runs the CLI bin with --json --buffer transport and extra flags.
func cliJSON(tmp, bin, name, transport string, workers int, extra ...string) result {
	out, errOut := filepath.Join(tmp, "cli.out"), filepath.Join(tmp, "cli.err")
	args := append([]string{"--json", "--buffer", transport}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = create(out), create(errOut)
	started(cmd, fileContains(errOut, "tracing"))
	s, u := measure(cmd.Process.Pid, workers, "cli")
	rss := peakRSSMiB(cmd.Process.Pid)
	sys := syscallCost()
	stop(cmd)
	lost := "?"
	raw, _ := os.ReadFile(errOut)
	if m := regexp.MustCompile(`(\d+) lost`).FindSubmatch(raw); m != nil {
		lost = string(m[1])
	}
	return result{tracer: name, rate: s.rate, captured: countMarker(out, s.marker),
		lost: lost, peakRSSMiB: rss, syscallNs: sys, usage: u}
}

func render(results []result, loadStart string) string {
	var b strings.Builder
	host, _ := os.Hostname()
	uname, _ := exec.Command("uname", "-r").Output()
	fmt.Fprintf(&b, "Exec storms of %d execs of /bin/true, %s, kernel %s, %d CPUs (host %s), load average (1, 5, 15 min) %s at the start and %s at the end. "+
		"Slowdown: against the mean of the storms without a tracer run just before and after. "+
		"getppid ns: one syscall's cost on the host while the tracer runs. "+
		"CPU: the tracer's threads' time on CPU (/proc/PID/task/*/schedstat). "+
		"Switches: the tracer's threads' context switches (voluntary and not, /proc/PID/task/*/status). "+
		"exec/fork/exit ns: the kernel's BPF statistics, run time per run of the tracer's program(s) on that path.\n\n",
		*execs, time.Now().UTC().Format("2006-01-02"), strings.TrimSpace(string(uname)), numCPU(), host, loadStart, loadavg())
	b.WriteString("| workers | tracer | execs/s | slowdown | captured | lost | tracer CPU ms / 1000 execs | peak RSS MiB | p99 exec-to-reader ms | getppid ns | switches / 1000 execs | exec ns | fork ns | exit ns |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		if r.tracer == "none" {
			fmt.Fprintf(&b, "| %d | none | %.0f | - | - | - | - | - | - | %.0f | - | - | - | - |\n", r.workers, r.rate, r.syscallNs)
			continue
		}
		latency := "-"
		if r.hasLatency {
			latency = fmt.Sprintf("%.0f", r.p99LatencyMs)
		}
		fmt.Fprintf(&b, "| %d | %s | %.0f | %.1f%% | %d / %d | %s | %.1f | %.1f | %s | %.0f | %s | %s | %s | %s |\n",
			r.workers, r.tracer, r.rate, r.slowdown, r.captured, *execs, r.lost, r.cpuPer1000, r.peakRSSMiB, latency, r.syscallNs,
			r.switchesCell(), ns(r.progs.perRun("exec")), ns(r.progs.perRun("fork")), ns(r.progs.perRun("exit")))
	}
	return b.String()
}

func numCPU() int {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	return bytes.Count(raw, []byte("processor\t:"))
}

// switchesCell marks a count that misses the threads that ended.
func (u usage) switchesCell() string {
	if u.threadsEnded > 0 {
		return fmt.Sprintf("%.0f (%d threads ended)", u.switchesPer1000, u.threadsEnded)
	}
	return fmt.Sprintf("%.0f", u.switchesPer1000)
}

// ns is a BPF time per run, "-" where the tracer has no such program.
func ns(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

// tracerTable runs every tracer's storm, per worker count.
func tracerTable(tmp string, counts []int) []result {
	var results []result
	for _, n := range counts {
		// The machine's own rate drifts by several percent over minutes, so
		// each tracer's storm runs between two storms without a tracer and
		// is compared with their mean.
		prev := storm(n, "baseline").rate
		baselines := []float64{prev}
		noneRow := len(results)
		results = append(results, result{tracer: "none", workers: n, captured: -1, lost: "-", syscallNs: syscallCost()})
		for _, t := range tracers(tmp) {
			if !strings.Contains(t.name, *only) {
				continue
			}
			r := t.run(n)
			after := storm(n, "baseline").rate
			baselines = append(baselines, after)
			r.workers = n
			r.slowdown = 100 * (1 - r.rate/((prev+after)/2))
			prev = after
			progress("%d workers, %s: %.0f execs/s (%.1f%% slower), %d/%d captured, lost %s, %.1f ms CPU and %.0f switches /1000 execs (%d threads ended); BPF: %v",
				n, r.tracer, r.rate, r.slowdown, r.captured, *execs, r.lost, r.cpuPer1000, r.switchesPer1000, r.threadsEnded, r.progs)
			results = append(results, r)
		}
		var sum float64
		for _, b := range baselines {
			sum += b
		}
		results[noneRow].rate = sum / float64(len(baselines))
		progress("%d workers, no tracer: %.0f execs/s (mean of %d storms)", n, results[noneRow].rate, len(baselines))
	}
	return results
}
