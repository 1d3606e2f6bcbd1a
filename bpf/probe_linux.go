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
	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/ringbuf"
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

// recordSource hides the two transports behind one reading loop.
type recordSource interface {
	// next returns the next raw record, or the number of records the
	// kernel dropped (perf), or os.ErrDeadlineExceeded once drained.
	next() (raw []byte, lost uint64, err error)
	// setDeadline bounds the wait of next; the zero time waits for data.
	setDeadline(time.Time)
	// wakesOnData says whether the kernel wakes a reader waiting on an
	// empty buffer for its first record (the ring buffer's adaptive
	// wakeup); the perf buffer wakes only at its watermark.
	wakesOnData() bool
	// flush makes next return what is buffered, then an error that
	// wraps ErrFlushed.
	flush() error
	close() error
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

// Read fills ev with the next event. It blocks until an event arrives or
// a drain ends with the buffer empty (ErrDrained), and returns ErrClosed
// once Close was called. Records that cannot be decoded are counted in
// Stats and skipped. Drains come at most once per drain period; an idle
// ring buffer is waited on until its first record, which starts a drain.
// Read waits without bound only after a drain that returned no events, so
// a caller that batches events must hand them on at such an ErrDrained.
func (p *Probe) Read(ev *Event) error {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	for {
		if p.idle {
			p.waitForDrain()
		}
		raw, lost, err := p.records.next()
		if err == nil && p.awaiting {
			p.awaiting = false
			p.startDrain()
		}
		switch {
		case p.stopped.Load() && (errors.Is(err, ringbuf.ErrFlushed) || errors.Is(err, perf.ErrFlushed) ||
			errors.Is(err, os.ErrDeadlineExceeded)):
			return ErrClosed
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The buffer is empty: a batch boundary.
			p.idle = true
			return ErrDrained
		case err == nil:
			p.drainRecords++
		case errors.Is(err, os.ErrClosed):
			return ErrClosed
		case err != nil:
			return fmt.Errorf("reading the %s buffer: %w", p.transport, err)
		}
		if lost > 0 {
			p.lostSamples.Add(lost)
			continue
		}
		if err := p.decoder.decode(raw, ev); err != nil {
			p.decodeErrors.Add(1)
			continue
		}
		p.read.Add(1)
		return nil
	}
}

// waitForDrain ends the wait between drains. After a drain that found no
// records, a source that wakes on data is read without a deadline: next
// blocks until the first record (or Stop or Close, which wake it too), and
// that record starts the drain. Otherwise it sleeps until the next drain
// period (or Stop or Close) and starts the drain. The buffer must hold one
// period of events; the default holds thousands.
func (p *Probe) waitForDrain() {
	p.idle = false
	if p.drainRecords == 0 && p.records.wakesOnData() && !p.stopped.Load() {
		p.awaiting = true
		p.records.setDeadline(time.Time{})
		return
	}
	if d := time.Until(p.nextDrain); d > 0 {
		p.timer.Reset(d)
		select {
		case <-p.timer.C:
		case <-p.wake:
			p.timer.Stop()
		}
	}
	p.startDrain()
}

// startDrain arms a deadline in the past: the reader takes everything
// buffered without blocking, and reports os.ErrDeadlineExceeded once the
// buffer is empty.
func (p *Probe) startDrain() {
	p.drainRecords = 0
	p.nextDrain = time.Now().Add(p.opts.DrainPeriod)
	p.records.setDeadline(time.Now())
	p.decoder.clock = currentBootClock()
}

// Stats returns the counters so far; after Close, the final ones.
func (p *Probe) Stats() Stats {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	if p.closed {
		return p.finalStats
	}
	return p.collectStats()
}

func (p *Probe) collectStats() Stats {
	s := Stats{
		Read:         p.read.Load(),
		LostSamples:  p.lostSamples.Load(),
		DecodeErrors: p.decodeErrors.Load(),
	}
	if p.objs.Stats == nil {
		return s
	}
	sum := func(index execsnoopStatIndex) uint64 {
		var perCPU []uint64
		if err := p.objs.Stats.Lookup(uint32(index), &perCPU); err != nil {
			return 0
		}
		var total uint64
		for _, v := range perCPU {
			total += v
		}
		return total
	}
	s.LostExec = sum(execsnoopStatIndexSTAT_LOST_EXEC)
	s.LostExit = sum(execsnoopStatIndexSTAT_LOST_EXIT)
	s.LostFork = sum(execsnoopStatIndexSTAT_LOST_FORK)
	return s
}

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

func currentBootClock() bootClock {
	var boot, real unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &real)
	return bootClock{offset: time.Duration(real.Nano() - boot.Nano())}
}

type ringbufSource struct {
	reader *ringbuf.Reader
	record ringbuf.Record
}

func newRingbufSource(m *ebpf.Map) (*ringbufSource, error) {
	r, err := ringbuf.NewReader(m)
	if err != nil {
		return nil, err
	}
	return &ringbufSource{reader: r}, nil
}

func (s *ringbufSource) next() ([]byte, uint64, error) {
	err := s.reader.ReadInto(&s.record)
	return s.record.RawSample, 0, err
}

func (s *ringbufSource) setDeadline(t time.Time) { s.reader.SetDeadline(t) }
func (s *ringbufSource) wakesOnData() bool       { return true }
func (s *ringbufSource) flush() error            { return s.reader.Flush() }
func (s *ringbufSource) close() error            { return s.reader.Close() }

type perfSource struct {
	reader *perf.Reader
	record perf.Record
}

func newPerfSource(m *ebpf.Map, perCPUBuffer int) (*perfSource, error) {
	perCPUBuffer = pageRoundPow2(perCPUBuffer)
	// The reader drains on its own schedule; a high watermark spares the
	// kernel wakeups nobody waits for.
	r, err := perf.NewReaderWithOptions(m, perCPUBuffer, perf.ReaderOptions{Watermark: perCPUBuffer / 2})
	if err != nil {
		return nil, err
	}
	return &perfSource{reader: r}, nil
}

func (s *perfSource) next() ([]byte, uint64, error) {
	err := s.reader.ReadInto(&s.record)
	return s.record.RawSample, s.record.LostSamples, err
}

func (s *perfSource) setDeadline(t time.Time) { s.reader.SetDeadline(t) }
func (s *perfSource) wakesOnData() bool       { return false }
func (s *perfSource) flush() error            { return s.reader.Flush() }
func (s *perfSource) close() error            { return s.reader.Close() }
