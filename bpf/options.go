package bpf

import (
	"errors"
	"fmt"
	"time"
)

// Transport names how records travel from the kernel to user space.
type Transport string

const (
	// TransportAuto picks the ring buffer when the kernel has it (5.8+).
	TransportAuto    Transport = "auto"
	TransportRingbuf Transport = "ringbuf"
	TransportPerf    Transport = "perf"
)

// FailedExecs says which execs to report by outcome; filtered in the kernel.
type FailedExecs string

const (
	FailedExecsInclude FailedExecs = "include" // successful and failed execs
	FailedExecsExclude FailedExecs = "exclude" // successful execs only
	FailedExecsOnly    FailedExecs = "only"    // failed execs only
)

// FailedExecHook says where failed execs are caught.
type FailedExecHook string

const (
	// HookAuto uses fexit where the kernel allows it, else sys_exit.
	HookAuto FailedExecHook = "auto"
	// HookFexit hooks the exec path itself: fexit on the execve/execveat
	// syscall functions, where other syscalls pay nothing and every failure
	// is seen; where BTF lacks those, on bprm_execve (before 6.7), which
	// misses errors raised before the new image is opened (E2BIG, EFAULT
	// while copying argv). See kernelInfo.fexitTargets.
	HookFexit FailedExecHook = "fexit"
	// HookSysExit hooks every syscall's exit: every failure is seen, and
	// every syscall on the host pays for the hook.
	HookSysExit FailedExecHook = "sys_exit"
)

// The defaults and bounds of Options, one place for each.
const (
	DefaultBufferSize  = 8 << 20
	MinBufferSize      = 4096
	MaxBufferSize      = 1 << 30
	DefaultArgsSize    = 4096
	MaxArgsSize        = 32 * 1024 // ARGS_SIZE_LIMIT in execsnoop.h
	DefaultMaxArgs     = 1024
	DefaultDrainPeriod = 50 * time.Millisecond
	MaxDrainPeriod     = 10 * time.Second
	// DefaultEnvScanSize and MaxEnvScanSize bound the environment bytes
	// searched for TRACEPARENT/TRACESTATE (ENV_SCAN_LIMIT in execsnoop.h).
	DefaultEnvScanSize = 32 * 1024
	MaxEnvScanSize     = 60 * 1024
)

// Options configure Open. The zero value means the defaults.
type Options struct {
	Transport Transport
	// BufferSize is the ring buffer's size in bytes, or for perf the total
	// over all CPUs. Rounded up to a power-of-two number of pages.
	BufferSize int
	// ArgsSize is the argv byte budget of one exec (at most MaxArgsSize).
	ArgsSize int
	// MaxArgs caps the number of arguments kept of one exec.
	MaxArgs     int
	FailedExecs FailedExecs
	// FailedExecHook picks how failed execs are caught (auto by default).
	FailedExecHook FailedExecHook
	// Exits and Forks turn on exit and fork events.
	Exits bool
	Forks bool
	// UIDs, when not empty, keeps only events of these real uids (as
	// libbpf-tools' execsnoop -u; Event.UID is the effective one).
	UIDs []uint32
	// CgroupPath, when set, keeps only processes in this cgroup v2
	// directory or below it (e.g. /sys/fs/cgroup/system.slice).
	CgroupPath string
	// ExcludeTree drops events of this process and its descendants, by
	// its pid in the initial PID namespace; 0 excludes nothing.
	ExcludeTree uint32
	// ExcludeSelf drops events of the calling process and its descendants
	// (the tracer's own tree), by the pid the kernel sees for it: right
	// inside a container's own PID namespace too, where os.Getpid() is not.
	ExcludeSelf bool
	// DrainPeriod is how often the reader drains the buffer while records
	// keep coming: the bound on delivery latency. After a drain that found
	// none, a ring buffer's reader waits for the first record and reads it
	// at once (the perf buffer keeps the period). The buffer must hold the
	// events of one period.
	DrainPeriod time.Duration
	// TraceContext looks for TRACEPARENT and TRACESTATE in the environment
	// of every new image (Event.TraceParent, Event.TraceState); only their
	// values leave the kernel. EnvScanSize bounds the bytes searched
	// (0: DefaultEnvScanSize, at most MaxEnvScanSize).
	TraceContext bool
	EnvScanSize  int
}

func (o Options) withDefaults() Options {
	if o.Transport == "" {
		o.Transport = TransportAuto
	}
	if o.BufferSize == 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.ArgsSize == 0 {
		o.ArgsSize = DefaultArgsSize
	}
	if o.MaxArgs == 0 {
		o.MaxArgs = DefaultMaxArgs
	}
	if o.FailedExecs == "" {
		o.FailedExecs = FailedExecsInclude
	}
	if o.FailedExecHook == "" {
		o.FailedExecHook = HookAuto
	}
	if o.DrainPeriod == 0 {
		o.DrainPeriod = DefaultDrainPeriod
	}
	if o.EnvScanSize == 0 {
		o.EnvScanSize = DefaultEnvScanSize
	}
	return o
}

// Validate reports every option out of its range, naming it.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	switch o.Transport {
	case TransportAuto, TransportRingbuf, TransportPerf:
	default:
		errs = append(errs, fmt.Errorf("transport %q: must be auto, ringbuf or perf", o.Transport))
	}
	if o.BufferSize < MinBufferSize || o.BufferSize > MaxBufferSize {
		errs = append(errs, fmt.Errorf("buffer size %d: must be between %d and %d bytes", o.BufferSize, MinBufferSize, MaxBufferSize))
	}
	if o.ArgsSize < 0 || o.ArgsSize > MaxArgsSize {
		errs = append(errs, fmt.Errorf("argv size %d: must be at most %d bytes (0 for the default)", o.ArgsSize, MaxArgsSize))
	}
	if o.MaxArgs < 0 {
		errs = append(errs, fmt.Errorf("max args %d: must be positive", o.MaxArgs))
	}
	switch o.FailedExecs {
	case FailedExecsInclude, FailedExecsExclude, FailedExecsOnly:
	default:
		errs = append(errs, fmt.Errorf("failed execs %q: must be include, exclude or only", o.FailedExecs))
	}
	switch o.FailedExecHook {
	case HookAuto, HookFexit, HookSysExit:
	default:
		errs = append(errs, fmt.Errorf("failed exec hook %q: must be auto, fexit or sys_exit", o.FailedExecHook))
	}
	if o.ExcludeSelf && o.ExcludeTree != 0 {
		errs = append(errs, errors.New("exclude self and exclude tree: give one of them"))
	}
	if o.DrainPeriod < 0 || o.DrainPeriod > MaxDrainPeriod {
		errs = append(errs, fmt.Errorf("drain period %s: must be between 0 and %s", o.DrainPeriod, MaxDrainPeriod))
	}
	if o.EnvScanSize < 0 || o.EnvScanSize > MaxEnvScanSize {
		errs = append(errs, fmt.Errorf("environment scan size %d: must be at most %d bytes (0 for the default)", o.EnvScanSize, MaxEnvScanSize))
	}
	return errors.Join(errs...)
}

// Stats counts what the probe read and what it lost.
type Stats struct {
	// Read is the number of events decoded.
	Read uint64
	// LostExec, LostExit and LostFork count events the kernel had no
	// buffer room for, by kind.
	LostExec, LostExit, LostFork uint64
	// LostSamples counts records the perf buffer overwrote (perf only).
	LostSamples uint64
	// DecodeErrors counts records that could not be decoded.
	DecodeErrors uint64
}

// Lost is every event lost on the way from the kernel.
func (s Stats) Lost() uint64 { return s.LostExec + s.LostExit + s.LostFork + s.LostSamples }

// ErrDrained is returned by Read when the buffer is empty for now: a batch
// boundary. Call Read again to wait for the next events.
var ErrDrained = errors.New("buffer drained")

// ErrClosed is returned by Read once the probe is closed, or stopped and
// drained.
var ErrClosed = errors.New("probe closed")

// envScanMax is the kernel's env_scan_max: 0 turns the lookup off.
func envScanMax(o Options) uint32 {
	if !o.TraceContext {
		return 0
	}
	return uint32(o.EnvScanSize)
}
