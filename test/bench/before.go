//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The before/after comparison: the CLI and the collector built at an
// earlier commit (-before) against the current ones, in -rounds rounds
// that interleave them with libbpf-tools execsnoop and with storms
// without a tracer. A round's ratios compare runs minutes apart at most;
// the median over rounds is what the issues' targets are judged on, since
// this machine's per-exec costs drift between runs.

// beforeBuild builds the CLI and the collector at commit into
// bin/before-COMMIT/ once; later runs reuse them. The collector's
// distribution sources are committed, so a go build of them is ocb's
// result (make build only regenerates them first). The commit's own
// config/otlp.yaml goes with them.
func beforeBuild(commit string) (cli string, col otelcol) {
	dir, err := filepath.Abs(filepath.Join(*binDir, "before-"+commit))
	check(err)
	cli = filepath.Join(dir, "execsnoop")
	col = otelcol{filepath.Join(dir, "otelcol-execsnoop"), filepath.Join(dir, "otlp.yaml")}
	if exists(cli) && exists(col.bin) && exists(col.otlpConfig) {
		progress("using the CLI and collector of %s in %s", commit, dir)
		return cli, col
	}
	progress("building the CLI and collector of %s into %s (once; a few minutes)", commit, dir)
	src, err := os.MkdirTemp("", "execsnoop-before-")
	check(err)
	defer os.RemoveAll(src)
	tarball := filepath.Join(src, "src.tar")
	run("", "git", "archive", "--format=tar", "-o", tarball, commit)
	run(src, "tar", "-xf", tarball)
	check(os.MkdirAll(dir, 0o755))
	run(src, "go", "build", "-o", cli, "./cmd/execsnoop")
	run(filepath.Join(src, "cmd", "otelcol-execsnoop"), "env", "CGO_ENABLED=0", "go", "build", "-trimpath", "-o", col.bin, ".")
	raw, err := os.ReadFile(filepath.Join(src, "config", "otlp.yaml"))
	check(err)
	check(os.WriteFile(col.otlpConfig, raw, 0o644))
	return cli, col
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func run(dir, name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		fail("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

type roundRow struct {
	round int
	result
}

// compare runs the rounds. In each, per worker count, the order is
// libbpf-tools, then the CLI pair, then the collector pair, a storm
// without a tracer between any two; which of a pair goes first alternates
// by round, so that a drift over the round favours neither.
func compare(tmp string, counts []int) comparison {
	cliBefore, colBefore := beforeBuild(*before)
	cliNow := filepath.Join(*binDir, "execsnoop")
	colNow := otelcol{filepath.Join(*binDir, "otelcol-execsnoop"), "config/otlp.yaml"}
	withSyscallCost = false
	defer func() { withSyscallCost = true }()
	c := comparison{loadStart: loadavg()}
	for round := 1; round <= *rounds; round++ {
		for _, w := range counts {
			runs := []tracer{{"libbpf-tools execsnoop", func(w int) result { return libbpfTools(tmp, w) }}}
			clis := []tracer{
				{"execsnoop --json (ringbuf), before", func(w int) result { return cliJSON(tmp, cliBefore, "", "ringbuf", w) }},
				{"execsnoop --json (ringbuf), now", func(w int) result { return cliJSON(tmp, cliNow, "", "ringbuf", w) }},
			}
			cols := []tracer{
				{"otelcol-execsnoop -> OTLP (ringbuf, gzip), before", func(w int) result {
					return collector(tmp, colBefore, "ringbuf", "gzip", byBytes, "", w)
				}},
				{"otelcol-execsnoop -> OTLP (ringbuf, gzip), now", func(w int) result {
					return collector(tmp, colNow, "ringbuf", "gzip", byBytes, "", w)
				}},
			}
			if round%2 == 0 {
				slices.Reverse(clis)
				slices.Reverse(cols)
			}
			runs = append(append(runs, clis...), cols...)
			base := storm(w, "baseline").rate
			for _, t := range runs {
				r := t.run(w)
				after := storm(w, "baseline").rate
				r.tracer, r.workers = t.name, w
				r.slowdown = 100 * (1 - r.rate/((base+after)/2))
				base = after
				progress("round %d, %d workers, %s: %.0f execs/s (%.1f%% slower), %d/%d captured, lost %s, %.1f ms CPU and %.0f switches /1000 execs; BPF: %v",
					round, w, r.tracer, r.rate, r.slowdown, r.captured, *execs, r.lost, r.cpuPer1000, r.switchesPer1000, r.progs)
				c.rows = append(c.rows, roundRow{round, r})
			}
		}
	}
	c.loadEnd = loadavg()
	return c
}

// comparison is the rounds' rows and the host's load around them: the
// machine may be shared, and the numbers are to be read with it.
type comparison struct {
	rows               []roundRow
	loadStart, loadEnd string
}

func loadavg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// A ratio of one round: now over before (or over libbpf-tools), per
// worker count.
type ratioDef struct {
	what, tracer, over string // tracer and over: row names without the ", now"/", before" tail
	value              func(r result) float64
	target             float64 // at most; 0: none
	at2Only            bool    // the target is for 2 workers
}

const (
	cliName = "execsnoop --json (ringbuf)"
	colName = "otelcol-execsnoop -> OTLP (ringbuf, gzip)"
)

func bpfPerExec(r result) float64 {
	return r.progs.perRun("exec") + r.progs.perRun("fork") + r.progs.perRun("exit")
}

func wallTime(r result) float64 { return 1 / r.rate } // per exec; the ratio is the storms' wall-time ratio

var ratioDefs = []ratioDef{
	{"exec program ns, now / before", cliName, "", func(r result) float64 { return r.progs.perRun("exec") }, 0, false},
	{"exec program ns, now / before", colName, "", func(r result) float64 { return r.progs.perRun("exec") }, 0, false},
	{"BPF ns per exec (exec+fork+exit), now / before", cliName, "", bpfPerExec, 0, false},
	{"BPF ns per exec (exec+fork+exit), now / before", colName, "", bpfPerExec, 0, false},
	{"storm wall time, now / before", cliName, "", wallTime, 1.02, true},
	{"storm wall time, now / before", colName, "", wallTime, 1.02, true},
	{"CPU per exec, now / before", cliName, "", func(r result) float64 { return r.cpuPer1000 }, 1.10, false},
	{"CPU per exec, now / before", colName, "", func(r result) float64 { return r.cpuPer1000 }, 1.10, false},
	{"CPU per exec, now / libbpf-tools", colName, "libbpf-tools execsnoop", func(r result) float64 { return r.cpuPer1000 }, 0.5, false},
	{"CPU per exec, now / libbpf-tools", cliName, "libbpf-tools execsnoop", func(r result) float64 { return r.cpuPer1000 }, 0, false},
}

func renderCompare(c comparison, counts []int) string {
	rows := c.rows
	var b strings.Builder
	uname, _ := exec.Command("uname", "-r").Output()
	fmt.Fprintf(&b, "\nBefore/after, %s, kernel %s, %d CPUs, load average (1, 5, 15 min) %s at the start and %s at the end: "+
		"the CLI and the collector of %s (\"before\") and of this tree (\"now\"), %d interleaved rounds of storms of %d execs "+
		"of /bin/true (one binary, so the hash cache is warm), each between two storms without a tracer (slowdown: against their mean). "+
		"CPU: its threads' time on CPU. Switches: its threads' context switches. exec/fork/exit ns: the kernel's BPF statistics, run time per run; "+
		"a storm's exec forks, execs and exits once, so their sum is the BPF time per exec.\n\n",
		time.Now().UTC().Format("2006-01-02"), strings.TrimSpace(string(uname)), numCPU(), c.loadStart, c.loadEnd, *before, *rounds, *execs)
	b.WriteString("| round | workers | tracer | execs/s | slowdown | captured | lost | CPU ms / 1000 execs | switches / 1000 execs | exec ns | fork ns | exit ns | peak RSS MiB |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %d | %s | %.0f | %.1f%% | %d / %d | %s | %.1f | %s | %s | %s | %s | %.1f |\n",
			r.round, r.workers, r.tracer, r.rate, r.slowdown, r.captured, *execs, r.lost, r.cpuPer1000, r.switchesCell(),
			ns(r.progs.perRun("exec")), ns(r.progs.perRun("fork")), ns(r.progs.perRun("exit")), r.peakRSSMiB)
	}
	b.WriteString("\nPer-round ratios and their median (target: at most; met is judged on the median).\n\n")
	b.WriteString("| workers | tracer | ratio |")
	for round := 1; round <= *rounds; round++ {
		fmt.Fprintf(&b, " round %d |", round)
	}
	b.WriteString(" median | target | met |\n|---|---|---|" + strings.Repeat("---|", *rounds) + "---|---|---|\n")
	for _, w := range counts {
		for _, d := range ratioDefs {
			var ratios []float64
			fmt.Fprintf(&b, "| %d | %s | %s |", w, d.tracer, d.what)
			for round := 1; round <= *rounds; round++ {
				num, den := find(rows, round, w, d.tracer+", now"), find(rows, round, w, d.tracer+", before")
				if d.over != "" {
					den = find(rows, round, w, d.over)
				}
				if num == nil || den == nil || d.value(*den) == 0 {
					b.WriteString(" - |")
					continue
				}
				ratio := d.value(*num) / d.value(*den)
				ratios = append(ratios, ratio)
				fmt.Fprintf(&b, " %.2f |", ratio)
			}
			med := median(ratios)
			target, met := "-", "-"
			if d.target > 0 && (!d.at2Only || w == 2) {
				target, met = fmt.Sprintf("%.2f", d.target), "no"
				if len(ratios) > 0 && med <= d.target {
					met = "yes"
				}
			}
			fmt.Fprintf(&b, " %s | %s | %s |\n", fmtRatio(med, len(ratios)), target, met)
		}
	}
	return b.String()
}

func find(rows []roundRow, round, workers int, tracer string) *result {
	for i := range rows {
		if rows[i].round == round && rows[i].workers == workers && rows[i].tracer == tracer {
			return &rows[i].result
		}
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRatio(v float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}
