package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/otelexecsnoop/execsnoop/test/kernels/internal/result"
)

// vmOptions are the machine and the guest's settings.
type vmOptions struct {
	Memory   string
	CPUs     int
	Timeout  time.Duration
	Syscalls int    // getppid calls per benchmark run
	Runs     int    // benchmark runs per configuration
	Scale    int    // multiplies the tests' deadlines
	Append   string // more kernel command line
	BPFRun   string
	CLIRun   string
	// Collector is the cpio of the image's collector (collectorCPIO)
	// appended to this guest's initrd, or "".
	Collector string
}

// boot runs one kernel with the initramfs under QEMU's TCG accelerator
// (this machine's /dev/kvm cannot run these kernels) until the guest
// powers off, writing the serial console to logPath. QEMU is killed when
// ctx ends or the timeout passes, and with this process (Pdeathsig).
func boot(ctx context.Context, k kernel, initramfs, logPath string, o vmOptions) (res *result.Result, booted time.Duration, err error) {
	a := k.Arch
	timeout := a.timeout(o.Timeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmdline := []string{"console=" + a.Console, "panic=-1", "quiet", "loglevel=4",
		fmt.Sprintf("KTEST_SYSCALLS=%d", o.Syscalls), fmt.Sprintf("KTEST_RUNS=%d", o.Runs),
		fmt.Sprintf("KTEST_TIMEOUT_SCALE=%d", o.Scale*a.Slowdown)}
	cmdline = append(cmdline, strings.Fields(o.Append)...)
	if o.BPFRun != "" {
		cmdline = append(cmdline, "KTEST_BPF_RUN="+o.BPFRun)
	}
	if o.CLIRun != "" {
		cmdline = append(cmdline, "KTEST_CLI_RUN="+o.CLIRun)
	}
	var extra []string
	if o.Collector != "" {
		cmdline = append(cmdline, "KTEST_COLLECTOR="+a.Platform())
		extra = append(extra, o.Collector)
	}
	// Linux keeps COMMAND_LINE_SIZE bytes of it (2048 on x86 and arm64)
	// and drops the rest silently.
	if n := len(strings.Join(cmdline, " ")); n >= 2048 {
		return nil, 0, fmt.Errorf("the kernel command line is %d bytes, more than the kernel keeps (2047): shorten -bpf-run/-cli-run", n)
	}
	initrd, err := initrdFor(k, initramfs, extra...)
	if err != nil {
		return nil, 0, err
	}
	args := slices.Concat([]string{"-accel", "tcg"}, a.Machine, []string{"-m", o.Memory, "-smp", fmt.Sprint(o.CPUs),
		"-nodefaults", "-display", "none", "-no-reboot", "-monitor", "none",
		"-serial", "stdio",
		"-kernel", k.Vmlinuz, "-initrd", initrd,
		"-append", strings.Join(cmdline, " ")})
	cmd := exec.CommandContext(ctx, a.QEMU, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, 0, err
	}
	defer logFile.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, err
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("%s: %v (install %s)", a.QEMU, err, a.QEMUPkg)
	}
	started := time.Now()
	var parseErr error
	ended := false
	sc := bufio.NewScanner(io.TeeReader(stdout, logFile))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, result.Marker):
			res = new(result.Result)
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, result.Marker)), res); err != nil {
				res, parseErr = nil, fmt.Errorf("the guest's result line does not parse: %v", err)
			}
		case line == result.End:
			ended = true
		case strings.HasPrefix(line, "ktest: kernel "):
			booted = time.Since(started)
			progress("%s: %s (booted in %.1fs)", k.Release, line, booted.Seconds())
		case strings.HasPrefix(line, "ktest: "), strings.HasPrefix(line, "--- FAIL"),
			strings.Contains(line, "Kernel panic"), strings.HasPrefix(line, "panic: "):
			progress("%s: %s", k.Release, line)
		}
	}
	waitErr := cmd.Wait()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && !ended:
		return res, booted, fmt.Errorf("killed QEMU after %s without a result (console: %s)", timeout, logPath)
	case ctx.Err() != nil && !ended:
		return res, booted, fmt.Errorf("interrupted: killed QEMU (console: %s)", logPath)
	case parseErr != nil:
		return nil, booted, fmt.Errorf("%v (console: %s)", parseErr, logPath)
	case res == nil || !ended:
		return res, booted, fmt.Errorf("the guest ended without a result (%v); console: %s", waitErr, logPath)
	case waitErr != nil:
		return res, booted, fmt.Errorf("QEMU: %v (console: %s)", waitErr, logPath)
	}
	return res, booted, nil
}
