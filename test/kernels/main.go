// Command kernels proves the probe on the kernels users run: it downloads
// Debian's cloud kernels (bullseye 5.10, bookworm 6.1, trixie 6.12; amd64,
// and arm64 as RELEASE-arm64) into a cache, boots each in QEMU (TCG:
// qemu-system-x86_64 or qemu-system-aarch64) with a tiny busybox
// initramfs of its architecture, and there runs `execsnoop --probe-report`,
// the bpf package's tests, the CLI's end-to-end tests and a getppid(2)
// benchmark (see guest/). It prints a
// table with a row per kernel, the host's included, writes it to -out, and
// exits 1 if any guest failed. `make test-kernels` runs it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/otelexecsnoop/execsnoop/test/kernels/internal/result"
)

var start = time.Now()

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kernels [%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

// row is one line of the table.
type row struct {
	Name    string // host, bullseye...
	Package string
	Res     *result.Result
	Err     error
	Seconds float64 // boot, tests, power-off
	// Collector: the guest was given the image's collector to run.
	Collector bool
}

func main() {
	dir := flag.String("dir", "bin/kernels", "cache of kernels, build directory and console logs")
	out := flag.String("out", "bin/kernels/results.md", "where the table is written (Markdown)")
	only := flag.String("kernels", strings.Join(releaseNames(), ","), "Debian releases whose cloud kernels are booted (RELEASE is amd64's, RELEASE-arm64 arm64's)")
	var o vmOptions
	flag.StringVar(&o.Memory, "memory", "1G", "guest memory")
	// One vCPU: with two, TCG let a vCPU run kernel text while another
	// patched it (tracepoint and trampoline attach): soft lockups on 5.10
	// and an int3 oops in syscall_exit_to_user_mode_prepare on 6.12.
	flag.IntVar(&o.CPUs, "cpus", 1, "guest CPUs")
	flag.DurationVar(&o.Timeout, "timeout", 20*time.Minute, "bound of each virtual machine, boot to power-off")
	flag.IntVar(&o.Syscalls, "syscalls", 200000, "getppid calls per benchmark run")
	flag.IntVar(&o.Runs, "runs", 5, "benchmark runs per configuration")
	flag.IntVar(&o.Scale, "timeout-scale", 10, "multiplies the tests' deadlines in the guests (TCG is slow)")
	flag.StringVar(&o.Append, "append", "", "more kernel command line for the guests")
	bpfRun := flag.String("bpf-run", "", "-test.run of the bpf tests in every guest (default: each kernel's selection; amd64's all)")
	parallel := flag.Int("parallel", runtime.NumCPU(), "guests booted at once (each takes one host CPU)")
	cliRun := flag.String("cli-run", "", "-test.run of the CLI tests in every guest (default: each kernel's selection; amd64's all)")
	collectorImage := flag.String("collector-image", "", "OCI image archive (make image's bin/image/otelcol-execsnoop.tar) whose collector trixie-arm64's guest starts, to deliver an exec record to a file exporter")
	collectorPlatform := flag.String("collector-platform", "", "the image's variant taken for -collector-image (default: the guest's, linux/arm64)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "kernels: the host row loads the probe and needs root (as `make test` does)")
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var chosen []release
	for _, name := range strings.Split(*only, ",") {
		i := slices.IndexFunc(releases, func(r release) bool { return r.Name == name })
		if i < 0 {
			fmt.Fprintf(os.Stderr, "kernels: unknown release %q (known: %s)\n", name, strings.Join(releaseNames(), ", "))
			os.Exit(2)
		}
		chosen = append(chosen, releases[i])
	}

	phase := time.Now()
	var kernels []kernel
	for _, r := range chosen {
		k, err := fetchKernel(*dir, r)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kernels:", err)
			os.Exit(1)
		}
		kernels = append(kernels, k)
	}
	timings := []string{fmt.Sprintf("kernels %.1fs", time.Since(phase).Seconds())}

	phase = time.Now()
	// One initramfs per architecture of the chosen kernels.
	initramfs := map[string]string{}
	var hostCLI string
	for _, k := range kernels {
		a := k.Arch
		if _, done := initramfs[a.Debian]; done {
			continue
		}
		build, path := filepath.Join(*dir, "guest"), filepath.Join(*dir, "initramfs.cpio")
		if a.Debian != "amd64" {
			build, path = filepath.Join(*dir, "guest-"+a.Debian), filepath.Join(*dir, "initramfs-"+a.Debian+".cpio")
		}
		progress("building the guest's programs (%s) and %s", a.GOARCH, path)
		if err := buildGuest(build, a); err != nil {
			fmt.Fprintln(os.Stderr, "kernels:", err)
			os.Exit(1)
		}
		if err := writeInitramfs(build, path, a); err != nil {
			fmt.Fprintln(os.Stderr, "kernels: initramfs:", err)
			os.Exit(1)
		}
		if fi, err := os.Stat(path); err == nil {
			progress("initramfs: %d MiB", fi.Size()>>20)
		}
		initramfs[a.Debian] = path
	}
	// The host row's CLI: the host's architecture (amd64) is built anyway.
	hostBuild := filepath.Join(*dir, "guest")
	if _, ok := initramfs["amd64"]; !ok {
		if err := buildGuest(hostBuild, amd64); err != nil {
			fmt.Fprintln(os.Stderr, "kernels:", err)
			os.Exit(1)
		}
	}
	hostCLI = filepath.Join(hostBuild, "bin", "execsnoop")
	timings = append(timings, fmt.Sprintf("build %.1fs", time.Since(phase).Seconds()))

	// The image's collector, for the one guest that runs it.
	collectors := map[string]string{} // release -> cpio
	if *collectorImage != "" {
		phase = time.Now()
		for _, k := range kernels {
			if !k.Collector {
				continue
			}
			path := filepath.Join(*dir, k.Release, "collector.cpio")
			what, err := collectorCPIO(*collectorImage, *collectorPlatform, k.Arch, path)
			if err != nil {
				fmt.Fprintln(os.Stderr, "kernels: -collector-image:", err)
				os.Exit(1)
			}
			progress("%s: runs %s", k.Release, what)
			collectors[k.Release] = path
		}
		if len(collectors) == 0 {
			var runs []string
			for _, r := range releases {
				if r.Collector {
					runs = append(runs, r.Name)
				}
			}
			fmt.Fprintf(os.Stderr, "kernels: -collector-image: none of the chosen kernels (%s) runs the image's collector; %s does\n", *only, strings.Join(runs, ", "))
			os.Exit(2)
		}
		timings = append(timings, fmt.Sprintf("collector %.1fs", time.Since(phase).Seconds()))
	}

	rows := []row{hostRow(hostCLI)}
	guestRows := make([]row, len(kernels))
	guestTimings := make([]string, len(kernels))
	ran := make([]bool, len(kernels))
	// Each guest has one vCPU, which TCG runs on one host thread: with
	// -parallel 2 on two cores, two guests take the time of one.
	slots := make(chan struct{}, max(*parallel, 1))
	var wg sync.WaitGroup
	for i, k := range kernels {
		slots <- struct{}{}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			o := o
			o.Collector = collectors[k.Release]
			guestRows[i], guestTimings[i] = runGuest(ctx, k, initramfs[k.Arch.Debian], *dir, o, *bpfRun, *cliRun)
			ran[i] = true
		}()
	}
	wg.Wait()
	for i := range kernels {
		if ran[i] {
			rows = append(rows, guestRows[i])
			timings = append(timings, guestTimings[i])
		}
	}
	timings = append(timings, fmt.Sprintf("total %.1fs, %d guests at once", time.Since(start).Seconds(), max(*parallel, 1)))

	table := markdown(rows, o, timings)
	fmt.Print("\n" + table)
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err == nil {
		err = os.WriteFile(*out, []byte(table), 0o644)
	}
	failed := 0
	for _, r := range rows[1:] {
		if r.Err != nil || r.failure() != nil {
			failed++
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "kernels: interrupted")
		os.Exit(1)
	}
	if failed > 0 || len(rows) != len(kernels)+1 {
		fmt.Fprintf(os.Stderr, "kernels: %d of %d kernels failed; console logs under %s\n", failed, len(kernels), *dir)
		os.Exit(1)
	}
}

// releaseNames are every release's, the default selection.
func releaseNames() []string {
	var names []string
	for _, r := range releases {
		names = append(names, r.Name)
	}
	return names
}

// runGuest boots one kernel with its test selection (or the flags'), and
// returns its row and its wall time.
func runGuest(ctx context.Context, k kernel, initramfs, dir string, o vmOptions, bpfRun, cliRun string) (row, string) {
	progress("%s: booting %s under TCG", k.Release, k.Package)
	t := time.Now()
	o.BPFRun, o.CLIRun = k.BPFRun, k.CLIRun
	if bpfRun != "" {
		o.BPFRun = bpfRun
	}
	if cliRun != "" {
		o.CLIRun = cliRun
	}
	res, booted, err := boot(ctx, k, initramfs, filepath.Join(dir, k.Release, "console.log"), o)
	r := row{Name: k.Release, Package: k.Package + " " + k.Version, Res: res, Err: err, Seconds: time.Since(t).Seconds(),
		Collector: o.Collector != ""}
	if err == nil {
		err = r.failure()
	}
	if err != nil {
		progress("%s: FAILED: %v", k.Release, err)
	} else {
		progress("%s: passed in %.1fs", k.Release, r.Seconds)
	}
	return r, fmt.Sprintf("%s %.0fs (boot %.0fs)", k.Release, r.Seconds, booted.Seconds())
}

// hostRow is this machine's kernel: its tests are `go test ./...`.
func hostRow(execsnoop string) row {
	r := row{Name: "host", Res: &result.Result{}}
	var uts syscall.Utsname
	if syscall.Uname(&uts) == nil {
		b := make([]byte, 0, len(uts.Release))
		for _, c := range uts.Release {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		r.Res.Kernel = string(b)
	}
	cmd := exec.Command(execsnoop, "--probe-report")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	switch {
	case err == nil:
		if err := json.Unmarshal(stdout, &r.Res.Probe); err != nil {
			r.Res.ProbeError = fmt.Sprintf("--probe-report printed no JSON object: %q", stdout)
		}
	case cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 2:
		r.Res.ProbeError = "probe report unavailable: " + strings.TrimSpace(stderr.String())
	default:
		r.Res.ProbeError = strings.TrimSpace(stderr.String())
	}
	progress("host %s: probe report %s%s", r.Res.Kernel, strings.TrimSpace(string(stdout)), r.Res.ProbeError)
	return r
}

// failure is why a guest row fails, or nil.
func (r row) failure() error {
	if r.Err != nil {
		return r.Err
	}
	res := r.Res
	var why []string
	if len(res.Errors) > 0 {
		why = append(why, "setup: "+strings.Join(res.Errors, "; "))
	}
	if res.ProbeError != "" && !strings.HasPrefix(res.ProbeError, "probe report unavailable") {
		why = append(why, "probe: "+res.ProbeError)
	}
	for name, t := range map[string]result.Tests{"bpf tests": res.BPF, "CLI tests": res.CLI} {
		if !t.OK {
			why = append(why, fmt.Sprintf("%s failed %v %s", name, t.Failed, t.Error))
		}
	}
	if res.Bench.HookError != "" {
		why = append(why, "benchmark: "+res.Bench.HookError)
	}
	switch {
	case r.Collector && !res.Collector.Ran:
		why = append(why, "image collector: given to the guest, which did not run it")
	case res.Collector.Ran && !res.Collector.OK:
		why = append(why, "image collector: "+res.Collector.Error)
	}
	if len(why) == 0 {
		return nil
	}
	slices.Sort(why)
	return fmt.Errorf("%s", strings.Join(why, "; "))
}

func markdown(rows []row, o vmOptions, timings []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| kernel | loaded | transport | failed-exec hook | features | bpf tests | CLI e2e | getppid ns: none / -x | ratio | sys_exit ratio |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		res := r.Res
		if res == nil {
			res = &result.Result{}
		}
		kernel := res.Kernel
		if kernel == "" {
			kernel = r.Name
		}
		if r.Name != "host" {
			kernel += " (" + r.Name + ")"
		}
		loaded, transport, hook, features := probeColumns(res)
		bpfTests, cliTests, none, ratio, sysExit := "`go test ./...`", "`go test ./...`", "`make bench`", "", ""
		if r.Name != "host" {
			bpfTests, cliTests = testsColumn(res.BPF), testsColumn(res.CLI)+collectorNote(res.Collector)
			none, ratio, sysExit = benchColumns(res.Bench)
			if r.Err != nil {
				bpfTests = "no result: " + oneLine(r.Err.Error())
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			kernel, loaded, transport, hook, features, bpfTests, cliTests, none, ratio, sysExit)
	}
	fmt.Fprintf(&b, "\nQEMU TCG, %d vCPUs, %s; getppid: fastest of %d runs of %d calls each. Wall time: %s.\n",
		o.CPUs, o.Memory, o.Runs, o.Syscalls, strings.Join(timings, ", "))
	return b.String()
}

func probeColumns(res *result.Result) (loaded, transport, hook, features string) {
	if res.Probe == nil {
		loaded = "? " + oneLine(res.ProbeError)
		if strings.HasPrefix(res.ProbeError, "probe report unavailable") {
			// Today's CLI: whether `execsnoop -x` started says it loaded.
			switch {
			case res.Bench.HookError != "":
				loaded = "no (" + oneLine(res.Bench.HookError) + ")"
			case res.Bench.HookNs > 0:
				loaded = "yes (execsnoop -x ran); probe report unavailable"
			}
		} else if res.ProbeError != "" {
			loaded = "no: " + oneLine(res.ProbeError)
		}
		return loaded, "", "", ""
	}
	str := func(k string) string {
		if v, ok := res.Probe[k]; ok {
			return fmt.Sprint(v)
		}
		return ""
	}
	loaded = "yes"
	if f, ok := res.Probe["features"].(map[string]any); ok {
		var on []string
		for _, k := range slices.Sorted(maps.Keys(f)) {
			switch v := f[k].(type) {
			case bool:
				if v {
					on = append(on, k)
				} else {
					on = append(on, "no "+k)
				}
			default:
				on = append(on, fmt.Sprintf("%s=%v", k, v))
			}
		}
		features = strings.Join(on, ", ")
	}
	return loaded, str("transport"), str("failed_exec_hook"), features
}

func testsColumn(t result.Tests) string {
	if !t.Ran {
		return "not run"
	}
	s := fmt.Sprintf("%d pass, %d fail, %d skip (%.0fs)", t.Pass, t.Fail, t.Skip, t.Seconds)
	if n := len(t.Failed); n > 4 {
		s += fmt.Sprintf(": FAIL %s and %d more", strings.Join(t.Failed[:4], " "), n-4)
	} else if n > 0 {
		s += ": FAIL " + strings.Join(t.Failed, " ")
	}
	if !t.OK && len(t.Failed) == 0 {
		s += ": FAIL " + oneLine(t.Error)
	}
	return s
}

// collectorNote ends the CLI e2e cell of the guest that ran the image's
// collector.
func collectorNote(c result.Collector) string {
	switch {
	case !c.Ran:
		return ""
	case c.OK:
		return fmt.Sprintf("; image's collector (%s): exec record in its file exporter (ready %.1fs, record %.1fs)", c.Platform, c.ReadySeconds, c.RecordSeconds)
	default:
		return fmt.Sprintf("; image's collector (%s) FAILED: %s", c.Platform, oneLine(c.Error))
	}
}

func benchColumns(b result.Bench) (none, ratio, sysExit string) {
	if b.NoneNs == 0 {
		return "n/a", "n/a", "n/a"
	}
	none = fmt.Sprintf("%.0f / ", b.NoneNs)
	if b.HookNs > 0 && b.HookError == "" {
		none += fmt.Sprintf("%.0f", b.HookNs)
		ratio = fmt.Sprintf("%.2f", b.HookNs/b.NoneNs)
	} else {
		none += "n/a"
		ratio = "n/a: " + oneLine(b.HookError)
	}
	if b.SysExitNs > 0 && b.SysExitError == "" {
		sysExit = fmt.Sprintf("%.2f", b.SysExitNs/b.NoneNs)
	} else {
		sysExit = "n/a: " + oneLine(b.SysExitError)
	}
	return none, ratio, sysExit
}

// oneLine keeps a table cell on one line and short.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "|", "/")), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
