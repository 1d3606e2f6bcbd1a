//go:build linux && (amd64 || arm64)

package bpf

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	burnThreads = 2
	burnCPU     = 150 * time.Millisecond // per thread
	burnMemory  = 64 << 20
)

// burn spends burnCPU of CPU time in each of burnThreads threads and
// touches burnMemory bytes.
func burn() int {
	mem := make([]byte, burnMemory)
	for i := 0; i < len(mem); i += os.Getpagesize() {
		mem[i] = 1
	}
	var wg sync.WaitGroup
	for range burnThreads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			var ts unix.Timespec
			x := 0
			for {
				for range 100000 {
					x++
				}
				unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
				if time.Duration(ts.Nano()) >= burnCPU {
					break
				}
			}
			_ = x
		}()
	}
	wg.Wait()
	runtime.KeepAlive(mem)
	return 0
}

// rusageParent runs burn as its only child and prints the child's pid and
// what getrusage(RUSAGE_CHILDREN) then reports.
func rusageParent() int {
	self, _ := os.Executable()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), helperEnv+"=burn")
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "burn:", err)
		return 3
	}
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &ru); err != nil {
		fmt.Fprintln(os.Stderr, "getrusage:", err)
		return 4
	}
	fmt.Println(cmd.Process.Pid, time.Duration(ru.Utime.Nano()).Nanoseconds(), time.Duration(ru.Stime.Nano()).Nanoseconds(),
		ru.Maxrss, ru.Minflt, ru.Majflt, ru.Nvcsw, ru.Nivcsw)
	return 0
}

func within(got, want, frac float64) bool { return math.Abs(got-want) <= frac*want }

// The exit record of a process that burns CPU in two threads and touches
// 64 MiB reports what getrusage(RUSAGE_CHILDREN) tells its parent.
func TestRusageAtExit(t *testing.T) {
	r := startRecorder(t, Options{Exits: true})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), helperEnv+"=rusage-parent")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rusage-parent: %v", err)
	}
	var pid int
	var utime, stime, maxrss, minflt, majflt, nvcsw, nivcsw int64
	if _, err := fmt.Sscan(strings.TrimSpace(string(out)), &pid, &utime, &stime, &maxrss, &minflt, &majflt, &nvcsw, &nivcsw); err != nil {
		t.Fatalf("parsing %q: %v", out, err)
	}
	ev := r.waitFor(t, "exit", exitOf(pid))
	ru := ev.Rusage
	t.Logf("kernel record: %+v", ru)
	t.Logf("getrusage(RUSAGE_CHILDREN): user %v system %v maxrss %d KiB minflt %d majflt %d nvcsw %d nivcsw %d",
		time.Duration(utime), time.Duration(stime), maxrss, minflt, majflt, nvcsw, nivcsw)
	if !ru.Valid {
		t.Fatal("no resource usage in the exit record")
	}
	wantCPU := float64(utime + stime)
	if wantCPU < float64(burnThreads*burnCPU)*0.9 {
		t.Fatalf("the child burnt only %v of CPU", time.Duration(wantCPU))
	}
	if !within(float64(ru.CPU()), wantCPU, 0.10) {
		t.Errorf("CPU %v, getrusage says %v", ru.CPU(), time.Duration(wantCPU))
	}
	if !within(float64(ru.UserCPU), float64(utime), 0.10) {
		t.Errorf("user CPU %v, getrusage says %v", ru.UserCPU, time.Duration(utime))
	}
	if !within(float64(ru.MaxRSS), float64(maxrss*1024), 0.10) || ru.MaxRSS < burnMemory {
		t.Errorf("peak RSS %d bytes, getrusage says %d KiB (and %d bytes were touched)", ru.MaxRSS, maxrss, burnMemory)
	}
	if !within(float64(ru.MinorFaults), float64(minflt), 0.10) || ru.MajorFaults > uint64(majflt)+10 {
		t.Errorf("faults %d minor %d major, getrusage says %d %d", ru.MinorFaults, ru.MajorFaults, minflt, majflt)
	}
	if ru.VoluntaryCtxSwitches+ru.InvoluntaryCtxSwitches == 0 || ru.VoluntaryCtxSwitches > uint64(nvcsw)+10 {
		t.Errorf("context switches %d voluntary %d involuntary, getrusage says %d %d",
			ru.VoluntaryCtxSwitches, ru.InvoluntaryCtxSwitches, nvcsw, nivcsw)
	}
	if ru.ThreadsCut {
		t.Error("threads cut")
	}
}

// Bytes written to storage are counted where the kernel accounts them.
func TestRusageStorageIO(t *testing.T) {
	r := startRecorder(t, Options{Exits: true})
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || fs.Type == unix.TMPFS_MAGIC {
		dir, _ = os.MkdirTemp(".", "iotest")
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	if err := unix.Statfs(dir, &fs); err != nil || fs.Type == unix.TMPFS_MAGIC || fs.Type == unix.RAMFS_MAGIC {
		t.Skip("no block device to write to: the temporary and working directories are in memory (as in the kernel VMs)")
	}
	cmd := run(t, "dd", "if=/dev/zero", "of="+dir+"/f", "bs=1M", "count=8", "conv=fsync", "status=none")
	if !cmd.ProcessState.Success() {
		t.Fatalf("dd: %v", cmd.ProcessState)
	}
	ru := r.waitFor(t, "exit", exitOf(cmd.Process.Pid)).Rusage
	if !ru.IOAccounted {
		t.Skip("this kernel does not account storage I/O (CONFIG_TASK_IO_ACCOUNTING)")
	}
	if ru.WriteBytes < 8<<20 {
		t.Errorf("write bytes %d, want at least 8 MiB", ru.WriteBytes)
	}
}

// The group_dead argument is found exactly on kernels from 6.16 on.
func TestExitTracepointSignature(t *testing.T) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &major, &minor)
	want := major > 6 || major == 6 && minor >= 16
	if got := exitHasGroupDead(); got != want {
		t.Errorf("kernel %d.%d: group_dead found %v, want %v", major, minor, got, want)
	}
	t.Logf("kernel limits: %q", KernelLimits())
}
