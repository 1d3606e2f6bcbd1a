package procattr

import "github.com/otelexecsnoop/execsnoop/bpf"

// Resource usage at exit, one scheme for all of it: a semantic-convention
// process metric that exists becomes "<metric name>.<value of its
// attribute>" (process.cpu.time by cpu.mode, process.paging.faults by
// system.paging.fault.type, process.context_switches by
// process.context_switch.type, process.disk.io by disk.io.direction),
// with the metric's unit (CPU in seconds as a double, I/O in bytes); what
// the conventions lack is under the project's prefix (the peak RSS, in
// bytes). The values are totals over the whole process, all threads.
const (
	CPUTimeUser            = "process.cpu.time.user"                // s
	CPUTimeSystem          = "process.cpu.time.system"              // s
	PagingFaultsMinor      = "process.paging.faults.minor"          // {fault}
	PagingFaultsMajor      = "process.paging.faults.major"          // {fault}
	ContextSwitchesVol     = "process.context_switches.voluntary"   // {context_switch}
	ContextSwitchesInvol   = "process.context_switches.involuntary" // {context_switch}
	DiskIORead             = "process.disk.io.read"                 // By, only where the kernel accounts storage I/O
	DiskIOWrite            = "process.disk.io.write"                // By
	MemoryPeak             = "execsnoop.process.memory.peak"        // By: the peak resident set (getrusage's ru_maxrss)
	RusageThreadsTruncated = "execsnoop.process.rusage.threads_cut" // the kernel walked only part of many threads
)

// rusageAttributes sends an exit's resource usage to s.
func rusageAttributes(ru *bpf.Rusage, s Sink) {
	if !ru.Valid {
		return
	}
	s.Double(CPUTimeUser, ru.UserCPU.Seconds())
	s.Double(CPUTimeSystem, ru.SystemCPU.Seconds())
	s.Int(MemoryPeak, int64(ru.MaxRSS))
	s.Int(PagingFaultsMinor, int64(ru.MinorFaults))
	s.Int(PagingFaultsMajor, int64(ru.MajorFaults))
	s.Int(ContextSwitchesVol, int64(ru.VoluntaryCtxSwitches))
	s.Int(ContextSwitchesInvol, int64(ru.InvoluntaryCtxSwitches))
	if ru.IOAccounted {
		s.Int(DiskIORead, int64(ru.ReadBytes))
		s.Int(DiskIOWrite, int64(ru.WriteBytes))
	}
	if ru.ThreadsCut {
		s.Bool(RusageThreadsTruncated, true)
	}
}
