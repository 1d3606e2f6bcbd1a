package procattr

import "github.com/otelexecsnoop/execsnoop/bpf"

// Resource usage at exit, one scheme for all of it: a semantic-convention
// process metric becomes "execsnoop.<metric name>.<value of its
// attribute>" (process.cpu.time by cpu.mode, process.paging.faults by
// system.paging.fault.type, process.context_switches by
// process.context_switch.type, process.disk.io by disk.io.direction),
// with the metric's unit (CPU in seconds as a double, I/O in bytes). The
// prefix is there because the registry has these names as metrics, not as
// attributes, and the process. namespace is the conventions' own. What the
// conventions lack (the peak RSS, in bytes) is under the prefix too. The
// values are totals over the whole process, all threads.
const (
	CPUTimeUser            = "execsnoop.process.cpu.time.user"                // s
	CPUTimeSystem          = "execsnoop.process.cpu.time.system"              // s
	PagingFaultsMinor      = "execsnoop.process.paging.faults.minor"          // {fault}
	PagingFaultsMajor      = "execsnoop.process.paging.faults.major"          // {fault}
	ContextSwitchesVol     = "execsnoop.process.context_switches.voluntary"   // {context_switch}
	ContextSwitchesInvol   = "execsnoop.process.context_switches.involuntary" // {context_switch}
	DiskIORead             = "execsnoop.process.disk.io.read"                 // By, only where the kernel accounts storage I/O
	DiskIOWrite            = "execsnoop.process.disk.io.write"                // By
	MemoryPeak             = "execsnoop.process.memory.peak"                  // By: the peak resident set (getrusage's ru_maxrss)
	RusageThreadsTruncated = "execsnoop.process.rusage.threads_cut"           // the kernel walked only part of many threads
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
