package bpf

import "time"

// Rusage is what a whole process (every thread) used, read by the kernel
// at the exit of its last thread: the totals its parent's wait(2) adds to
// getrusage(RUSAGE_CHILDREN).
type Rusage struct {
	// Valid is false when the kernel filled nothing (never on a supported
	// kernel; kept so that consumers can tell 0 from unknown).
	Valid bool
	// UserCPU and SystemCPU split the scheduler's runtime of all threads
	// (nanosecond-precise) in the proportion of the tick-sampled user and
	// system times, as the kernel does for getrusage.
	UserCPU, SystemCPU time.Duration
	// MaxRSS is the peak resident set size in bytes (ru_maxrss).
	MaxRSS uint64
	// MinorFaults and MajorFaults count page faults without and with I/O.
	MinorFaults, MajorFaults uint64
	// VoluntaryCtxSwitches and InvoluntaryCtxSwitches count context
	// switches (waits) and preemptions.
	VoluntaryCtxSwitches, InvoluntaryCtxSwitches uint64
	// IOAccounted says whether the kernel accounts storage I/O
	// (CONFIG_TASK_IO_ACCOUNTING); ReadBytes and WriteBytes are 0 without.
	IOAccounted bool
	// ReadBytes and WriteBytes are bytes read from and written to storage
	// (what /proc/PID/io calls read_bytes and write_bytes).
	ReadBytes, WriteBytes uint64
	// ThreadsCut is set when the process had more live threads at its exit
	// than the kernel walks; the totals then miss some of them.
	ThreadsCut bool
}

// CPU is the total CPU time.
func (r *Rusage) CPU() time.Duration { return r.UserCPU + r.SystemCPU }

// splitCPU divides the runtime like the kernel's cputime_adjust: in the
// proportion of the sampled user and system times, all user time when
// nothing was sampled.
func splitCPU(runtime, utime, stime uint64) (user, system time.Duration) {
	switch {
	case stime == 0:
		return time.Duration(runtime), 0
	case utime == 0:
		return 0, time.Duration(runtime)
	}
	// runtime * stime / (utime + stime) without overflowing 64 bits.
	sys := uint64(float64(runtime) * (float64(stime) / float64(utime+stime)))
	if sys > runtime {
		sys = runtime
	}
	return time.Duration(runtime - sys), time.Duration(sys)
}
