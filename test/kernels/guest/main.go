//go:build linux

// Command guest is /init of the virtual machines of test/kernels. It mounts
// what the probe and its tests need, runs `execsnoop --probe-report`, the
// bpf package's test binary, the CLI's end-to-end tests and a getppid(2)
// benchmark, writes one result line (result.Marker + JSON) on the serial
// console and powers the machine off.
//
// Settings come from the kernel command line (the kernel passes unknown
// NAME=VALUE parameters to init as environment variables): KTEST_SYSCALLS
// and KTEST_RUNS size the benchmark, KTEST_BPF_RUN and KTEST_CLI_RUN
// narrow the tests (-test.run), for debugging; KTEST_TIMEOUT_SCALE
// multiplies the tests' deadlines (default 10); KTEST_COLLECTOR=PLATFORM
// says the harness appended the image's collector of that variant, which
// then must deliver an exec record to a file exporter (collector.go).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
	"github.com/otelexecsnoop/execsnoop/test/kernels/internal/result"
)

// Paths inside the initramfs (test/kernels puts them there).
const (
	execsnoop = "/bin/execsnoop"
	execstorm = "/bin/execstorm"
	bpfTests  = "/bin/bpf.test"
	cliTests  = "/bin/execsnoop.test"
)

// Bounds of each step; the harness bounds the whole machine too.
const (
	testTimeout   = 15 * time.Minute
	tracerStartup = 2 * time.Minute
)

var console = os.Stdout // init's stdout is /dev/console

func logf(format string, args ...any) {
	fmt.Fprintf(console, "ktest: "+format+"\n", args...)
}

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "guest: this is /init of a test/kernels virtual machine; it powers the machine off")
		os.Exit(2)
	}
	var res result.Result
	res.Errors = setup()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		res.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	logf("kernel %s", res.Kernel)

	step("probe report", func() { res.Probe, res.ProbeError = probeReport() })
	step("bpf tests", func() { res.BPF = runTests(bpfTests, os.Getenv("KTEST_BPF_RUN")) })
	step("CLI tests", func() { res.CLI = runTests(cliTests, os.Getenv("KTEST_CLI_RUN"), "EXECSNOOP_BIN="+execsnoop) })
	step("benchmark", func() { res.Bench = bench(envInt("KTEST_SYSCALLS", 200000), envInt("KTEST_RUNS", 5)) })
	if platform := os.Getenv("KTEST_COLLECTOR"); platform != "" {
		step("image collector", func() { res.Collector = runCollector(platform) })
	}

	line, err := json.Marshal(res)
	if err != nil {
		line, _ = json.Marshal(result.Result{Kernel: res.Kernel, Errors: []string{"encoding the result: " + err.Error()}})
	}
	// One write, so that nothing else on the console splits the line.
	console.Write(slices.Concat([]byte("\n"+result.Marker), line, []byte("\n"+result.End+"\n")))
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		logf("power off: %v", err)
	}
	// Should power-off fail, init's exit panics the kernel, and panic=-1
	// with qemu -no-reboot ends the machine.
	os.Exit(1)
}

func step(name string, f func()) {
	start := time.Now()
	logf("%s ...", name)
	f()
	logf("%s took %.1fs", name, time.Since(start).Seconds())
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// setup mounts the file systems a Debian host has and the tests use, and
// sets the environment; it returns what failed.
func setup() []string {
	os.Setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
	os.Setenv("HOME", "/root")
	os.Setenv("TMPDIR", "/tmp")
	var errs []string
	for _, m := range []struct{ fstype, dir string }{
		{"proc", "/proc"},
		{"sysfs", "/sys"},
		{"devtmpfs", "/dev"},
		{"devpts", "/dev/pts"}, // script's pseudo-terminal
		{"tmpfs", "/tmp"},
		{"cgroup2", "/sys/fs/cgroup"},
		{"bpf", "/sys/fs/bpf"},
		{"debugfs", "/sys/kernel/debug"},
		{"tracefs", "/sys/kernel/tracing"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if err := unix.Mount(m.fstype, m.dir, m.fstype, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Sprintf("mount %s on %s: %v", m.fstype, m.dir, err))
		}
	}
	if err := loopbackUp(); err != nil {
		errs = append(errs, fmt.Sprintf("bringing up lo: %v", err))
	}
	errs = append(errs, loadModules("/lib/modules/ktest")...)
	for _, e := range errs {
		logf("%s", e)
	}
	return errs
}

// loadModules loads every module in dir (the harness puts overlayfs there,
// which the executable tests mount), as modprobe would at the first mount
// on a host.
func loadModules(dir string) (errs []string) {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.ko"))
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Sprintf("loading %s: %v", path, err))
		} else {
			logf("loaded %s", filepath.Base(path))
		}
	}
	return errs
}

// loopbackUp brings up lo, as a host's init does: the CLI's OTLP tests
// export to a sink on 127.0.0.1, which has no address while lo is down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// probeReport runs `execsnoop --probe-report`: one JSON line on stdout
// (exit 0), or one error line on stderr (exit 1).
func probeReport() (map[string]any, string) {
	ctx, cancel := context.WithTimeout(context.Background(), tracerStartup)
	defer cancel()
	cmd := exec.CommandContext(ctx, execsnoop, "--probe-report")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	errLine := strings.TrimSpace(stderr.String())
	logf("probe report: %s %s (%v)", strings.TrimSpace(stdout.String()), errLine, err)
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		var report map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
			return nil, fmt.Sprintf("--probe-report printed no JSON object (%v): %q", err, stdout.String())
		}
		return report, ""
	case errors.As(err, &exitErr) && exitErr.ExitCode() == 2:
		// A usage error: this execsnoop predates the flag.
		return nil, "probe report unavailable: " + errLine
	case errLine != "":
		return nil, errLine
	default:
		return nil, fmt.Sprintf("execsnoop --probe-report: %v", err)
	}
}

// Top-level test results of `-test.v` output (subtests are indented), and
// the lines that say which test the indented output lines that follow
// belong to.
var (
	testLineRE  = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+) `)
	testStartRE = regexp.MustCompile(`^=== (?:RUN|CONT|NAME|PAUSE)\s+([^/\s]+)`)
)

// skipReasons tells a skipped test's reason: `go test -v` prints the
// t.Skip message as the test's last output line, before `--- SKIP`.
type skipReasons struct {
	current string
	last    map[string]string // test -> its last output line
}

// line takes one output line.
func (s *skipReasons) line(line string) {
	if m := testStartRE.FindStringSubmatch(line); m != nil {
		s.current = m[1]
		return
	}
	if strings.HasPrefix(line, "    ") && s.current != "" {
		if s.last == nil {
			s.last = map[string]string{}
		}
		s.last[s.current] = strings.TrimSpace(line)
	}
}

func (s *skipReasons) reason(test string) string { return s.last[test] }

// runTests runs a compiled test binary with -test.v, copying its output to
// the console, and counts its top-level tests.
func runTests(bin, run string, env ...string) (t result.Tests) {
	t.Ran = true
	start := time.Now()
	defer func() { t.Seconds = time.Since(start).Seconds() }()
	args := []string{"-test.v", "-test.count=1", "-test.timeout=" + testTimeout.String()}
	if run != "" {
		args = append(args, "-test.run", run)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = "/tmp"
	// The tests' deadlines are written for the host; the emulated CPUs
	// of TCG on a busy host are many times slower.
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", testenv.TimeoutScaleEnv, envInt("KTEST_TIMEOUT_SCALE", 10)))
	cmd.Env = append(cmd.Env, env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Error = err.Error()
		return t
	}
	waitErr := make(chan error, 1)
	go func() { err := cmd.Wait(); pw.Close(); waitErr <- err }()
	sc := bufio.NewScanner(pr)
	sc.Buffer(nil, 1<<20)
	passed := false
	var reasons skipReasons
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(console, line)
		reasons.line(line)
		if line == "PASS" {
			passed = true
		}
		m := testLineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		switch m[1] {
		case "PASS":
			t.Pass++
		case "FAIL":
			t.Fail++
			t.Failed = append(t.Failed, m[2])
		case "SKIP":
			t.Skip++
			t.Skipped = append(t.Skipped, m[2]+": "+reasons.reason(m[2]))
		}
	}
	io.Copy(io.Discard, pr)
	err := <-waitErr
	t.OK = err == nil && passed && t.Fail == 0
	if err != nil {
		t.Error = err.Error()
	}
	return t
}

// bench times getppid(2) with execstorm -syscalls: without a tracer (before
// and after the tracers), with `execsnoop -x` and with the sys_exit hook
// forced; each value is the fastest of its runs: on a busy host (and TCG
// runs on one) noise only ever adds time.
func bench(syscalls, runs int) result.Bench {
	b := result.Bench{Syscalls: syscalls, Runs: runs}
	none, err := measure(syscalls, runs)
	if err != nil {
		b.HookError = "no baseline: " + err.Error()
		b.SysExitError = b.HookError
		return b
	}
	hook, err := withTracer(syscalls, runs, "-x", "--quiet")
	if err != nil {
		b.HookError = err.Error()
	}
	b.HookNs = fastest(hook)
	sysExit, err := withTracer(syscalls, runs, "-x", "--quiet", "--failed-exec-hook=sys_exit")
	if err != nil {
		b.SysExitError = err.Error()
	}
	b.SysExitNs = fastest(sysExit)
	after, err := measure(syscalls, runs)
	if err == nil {
		none = append(none, after...)
	}
	b.NoneNs = fastest(none)
	logf("getppid ns: none %.1f, execsnoop -x %.1f, sys_exit %.1f", b.NoneNs, b.HookNs, b.SysExitNs)
	return b
}

func measure(syscalls, runs int) ([]float64, error) {
	var ns []float64
	for range runs {
		out, err := exec.Command(execstorm, "-syscalls", strconv.Itoa(syscalls)).Output()
		if err != nil {
			return ns, fmt.Errorf("execstorm -syscalls: %v", err)
		}
		var r struct {
			NsPerSyscall float64 `json:"ns_per_syscall"`
		}
		if err := json.Unmarshal(out, &r); err != nil || r.NsPerSyscall <= 0 {
			return ns, fmt.Errorf("execstorm -syscalls printed %q", out)
		}
		ns = append(ns, r.NsPerSyscall)
	}
	return ns, nil
}

// withTracer measures while execsnoop runs with args; it starts tracing
// only once "execsnoop: tracing" is on its stderr.
func withTracer(syscalls, runs int, args ...string) ([]float64, error) {
	cmd := exec.Command(execsnoop, args...)
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	what := "execsnoop " + strings.Join(args, " ")
	deadline := time.After(tracerStartup)
	for !strings.Contains(stderr.String(), "execsnoop: tracing") {
		select {
		case err := <-done:
			first, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
			return nil, fmt.Errorf("%s ended before tracing (%v): %s", what, err, first)
		case <-deadline:
			cmd.Process.Kill()
			<-done
			return nil, fmt.Errorf("%s did not start tracing within %s: %s", what, tracerStartup, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	ns, measureErr := measure(syscalls, runs)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil && measureErr == nil {
			measureErr = fmt.Errorf("%s after SIGTERM: %v: %s", what, err, stderr.String())
		}
	case <-time.After(tracerStartup):
		cmd.Process.Kill()
		<-done
		if measureErr == nil {
			measureErr = fmt.Errorf("%s did not end after SIGTERM", what)
		}
	}
	return ns, measureErr
}

func fastest(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return slices.Min(xs)
}
