//go:build linux && (amd64 || arm64)

package bpf

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Probe is the loaded and attached BPF program and its reader.
type Probe struct {
	opts      Options
	transport Transport
	report    KernelReport
	objs      probeObjects
	failProgs []*ebpf.Program      // the failed-exec programs, one per attach point
	maps      map[string]*ebpf.Map // by name, for loading programs against them
	rest      *ebpf.Collection     // what objs does not hold (.rodata)
	links     []link.Link
	records   recordSource
	decoder   *decoder
	readMu    sync.Mutex // one Read at a time

	// Owned by Read. After a drain that found records it sleeps until
	// nextDrain on a Go timer: while records keep coming, one wakeup per
	// period, whatever the rate. After a drain that found none, a source
	// that wakes on data blocks for the first record instead (awaiting),
	// so an idle probe does not wake at all: in a Go program every wakeup
	// costs several thread switches.
	idle         bool
	awaiting     bool
	drainRecords int // records read since the drain began
	nextDrain    time.Time
	timer        *time.Timer
	wake         chan struct{} // closed by Stop and Close to end a sleep
	wakeOnce     sync.Once

	read, lostSamples, decodeErrors atomic.Uint64

	linksMu sync.Mutex // Stop and Close both detach
	stopped atomic.Bool

	closeOnce  sync.Once
	closeErr   error
	statsMu    sync.Mutex
	closed     bool
	finalStats Stats
}

// probeObjects are the maps and the programs that every kernel loads; the
// failed-exec program is chosen per kernel (attachFailedExecHook).
type probeObjects struct {
	execsnoopMaps
	HandleExec *ebpf.Program `ebpf:"handle_exec"`
	HandleExit *ebpf.Program `ebpf:"handle_exit"`
	HandleFork *ebpf.Program `ebpf:"handle_fork"`
}

func (o *probeObjects) Close() error {
	errs := []error{o.execsnoopMaps.Close()}
	for _, prog := range []*ebpf.Program{o.HandleExec, o.HandleExit, o.HandleFork} {
		if prog != nil {
			errs = append(errs, prog.Close())
		}
	}
	return errors.Join(errs...)
}

// Open loads the program, attaches it and starts nothing else: events
// queue in the kernel buffer until Read.
func Open(opts Options) (_ *Probe, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, explain(fmt.Errorf("raising the locked-memory limit: %w", err))
	}
	transport, err := resolveTransport(opts.Transport)
	if err != nil {
		return nil, err
	}
	spec, err := loadExecsnoop()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("counting CPUs: %w", err)
	}
	spec.Maps[execsnoopMapExecScratch].MaxEntries = uint32(cpus)
	ringSize := pageRoundPow2(MinBufferSize)
	if transport == TransportRingbuf {
		ringSize = pageRoundPow2(opts.BufferSize)
	}
	spec.Maps[execsnoopMapEventsRingbuf].MaxEntries = uint32(ringSize)

	if opts.ExcludeSelf {
		if opts.ExcludeTree, err = selfTGID(); err != nil {
			return nil, explain(err)
		}
	}
	failedOnly := opts.FailedExecs == FailedExecsOnly
	for name, value := range map[string]any{
		execsnoopVarUseRingbuf:            transport == TransportRingbuf,
		execsnoopVarArgsSizeMax:           uint32(opts.ArgsSize),
		execsnoopVarReportFailedExecs:     opts.FailedExecs != FailedExecsExclude,
		execsnoopVarReportOnlyFailedExecs: failedOnly,
		execsnoopVarFilterUid:             len(opts.UIDs) > 0,
		execsnoopVarFilterCgroup:          opts.CgroupPath != "",
		execsnoopVarExcludeTreeTgid:       opts.ExcludeTree,
		execsnoopVarEnvScanMax:            envScanMax(opts),
		execsnoopVarExitHasGroupDead:      exitHasGroupDead(),
	} {
		if err := spec.Variables[name].Set(value); err != nil {
			return nil, fmt.Errorf("setting %s: %w", name, err)
		}
	}

	kernel, err := inspectKernel()
	if err != nil {
		return nil, err
	}
	p := &Probe{opts: opts, transport: transport}
	p.report = KernelReport{Kernel: kernel.release, Transport: transport,
		Features: map[string]string{"user_regs": kernel.userRegs()}}
	if err := p.loadWithTraceContext(spec, kernel); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if err := p.setFilters(); err != nil {
		return nil, err
	}

	var progs []*ebpf.Program
	if !failedOnly {
		progs = append(progs, p.objs.HandleExec)
	}
	if opts.Exits {
		progs = append(progs, p.objs.HandleExit)
	}
	if opts.Forks {
		progs = append(progs, p.objs.HandleFork)
	}
	for _, prog := range progs {
		l, err := link.AttachTracing(link.TracingOptions{Program: prog})
		if err != nil {
			return nil, explainKernel(kernel, fmt.Errorf("attaching %s: %w", prog, err))
		}
		p.links = append(p.links, l)
	}
	// The failure hook comes last: under auto, a refused fexit falls back
	// to sys_exit.
	if opts.FailedExecs != FailedExecsExclude {
		if err := p.attachFailedExecHook(spec, kernel); err != nil {
			return nil, err
		}
	}

	if transport == TransportRingbuf {
		p.records, err = newRingbufSource(p.objs.EventsRingbuf)
	} else {
		p.records, err = newPerfSource(p.objs.EventsPerf, opts.BufferSize/cpus)
	}
	if err != nil {
		return nil, explain(fmt.Errorf("opening the %s reader: %w", transport, err))
	}
	p.decoder = newDecoder(opts.MaxArgs, currentBootClock())
	p.timer = time.NewTimer(time.Hour)
	p.timer.Stop()
	p.wake = make(chan struct{})
	p.idle = true
	p.nextDrain = time.Now().Add(opts.DrainPeriod)
	return p, nil
}

func (p *Probe) setFilters() error {
	for _, uid := range p.opts.UIDs {
		if err := p.objs.UidFilter.Put(uid, uint8(1)); err != nil {
			return fmt.Errorf("adding uid %d to the filter (at most %d uids): %w", uid, p.objs.UidFilter.MaxEntries(), err)
		}
	}
	if p.opts.CgroupPath == "" {
		return nil
	}
	dir, err := os.Open(p.opts.CgroupPath)
	if err != nil {
		return fmt.Errorf("cgroup filter: %w (give a cgroup v2 directory such as /sys/fs/cgroup/system.slice)", err)
	}
	defer dir.Close()
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(dir.Fd()), &fs); err != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("cgroup filter: %s is not a cgroup v2 directory: give one below the cgroup2 mount (see `mount -t cgroup2`)", p.opts.CgroupPath)
	}
	if err := p.objs.CgroupFilter.Put(uint32(0), uint32(dir.Fd())); err != nil {
		return fmt.Errorf("cgroup filter: %w", err)
	}
	return nil
}

// Transport is the transport in use (auto resolved).
func (p *Probe) Transport() Transport { return p.transport }

// KernelReport says what Open chose for this kernel; log it once.
func (p *Probe) KernelReport() KernelReport { return p.report }

// Stop detaches the programs, so that no new events arrive, and makes Read
// return the events still buffered and then ErrClosed: a shutdown that
// loses nothing already captured. Close still frees the probe.
func (p *Probe) Stop() error {
	if p.stopped.Swap(true) {
		return nil
	}
	err := errors.Join(p.detach(), p.records.flush())
	p.wakeReader()
	return err
}

func (p *Probe) detach() error {
	p.linksMu.Lock()
	defer p.linksMu.Unlock()
	var errs []error
	for _, l := range p.links {
		errs = append(errs, l.Close())
	}
	p.links = nil
	return errors.Join(errs...)
}

func (p *Probe) wakeReader() { p.wakeOnce.Do(func() { close(p.wake) }) }

// Close detaches the program, frees it and unblocks Read, dropping what is
// still buffered (Stop first to read it). It is safe to call more than once
// and from any goroutine.
func (p *Probe) Close() error {
	p.closeOnce.Do(func() {
		var errs []error
		if p.records != nil {
			errs = append(errs, p.records.close())
			p.wakeReader()
		}
		errs = append(errs, p.detach())
		p.statsMu.Lock()
		p.finalStats = p.collectStats()
		p.closed = true
		p.statsMu.Unlock()
		errs = append(errs, p.objs.Close())
		for _, prog := range p.failProgs {
			errs = append(errs, prog.Close())
		}
		if p.rest != nil {
			p.rest.Close()
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}

func resolveTransport(t Transport) (Transport, error) {
	if t == TransportPerf {
		return t, nil
	}
	err := features.HaveMapType(ebpf.RingBuf)
	switch {
	case err == nil:
		return TransportRingbuf, nil
	case t == TransportAuto && errors.Is(err, ebpf.ErrNotSupported):
		return TransportPerf, nil
	case errors.Is(err, ebpf.ErrNotSupported):
		return "", errors.New("this kernel has no BPF ring buffer (needs Linux 5.8+): use the perf transport")
	default:
		return "", explain(fmt.Errorf("probing for the BPF ring buffer: %w", err))
	}
}

// explain turns the errno of a failed BPF operation into what to do.
func explain(err error) error {
	var verifier *ebpf.VerifierError
	switch {
	case errors.As(err, &verifier):
		// The verifier refused a program: not a missing privilege.
		return fmt.Errorf("the kernel's BPF verifier refused a program (please report it with the kernel version): %w", err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("loading BPF needs CAP_BPF and CAP_PERFMON (and CAP_SYS_RESOURCE on kernels before 5.11): "+
			"run as root or grant them, e.g. setcap cap_bpf,cap_perfmon+ep BINARY (%w)", err)
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("%w: this kernel lacks a BPF feature execsnoop needs (BTF tracepoints, Linux %s+)", err, OldestKernel)
	}
	return err
}

// pageRoundPow2 rounds a byte size up to a power-of-two number of pages,
// as the ring buffer requires.
func pageRoundPow2(size int) int {
	page := os.Getpagesize()
	pages := (size + page - 1) / page
	if pages <= 1 {
		return page
	}
	return page << bits.Len(uint(pages-1))
}
