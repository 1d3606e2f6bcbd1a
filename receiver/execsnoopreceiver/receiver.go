package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/cgroup"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/overlay"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/proctable"
	"github.com/otelexecsnoop/execsnoop/internal/redact"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadata"
)

// Warnings about lost or refused data repeat at most this often.
const warnEvery = 10 * time.Second

// The probe's counters (kernel maps, a few syscalls) are read into
// telemetry at most this often: a storm drains the buffer thousands of
// times a second, and the counters need no finer grain. The drain that
// ends a burst and shutdown read them too, so nothing counted waits for
// the next event.
const statsEvery = time.Second

type execsnoopReceiver struct {
	cfg        *Config
	set        receiver.Settings
	logsNext   consumer.Logs   // nil when not in a logs pipeline
	tracesNext consumer.Traces // nil when not in a traces pipeline
	obsrecv    *receiverhelper.ObsReport
	telemetry  *metadata.TelemetryBuilder
	release    func() // forgets the shared instance

	startOnce, shutdownOnce sync.Once
	startErr, shutdownErr   error
	probe                   *bpf.Probe
	done                    chan struct{}

	// Owned by the reading goroutine.
	reported     bpf.Stats // the probe's counters already added to telemetry
	filtered     int64     // events the comm filters dropped, not yet reported
	lastLostWarn time.Time
	warnedLost   uint64 // the lost total at the last warning

	// Owned by the sending goroutine (send).
	lastRefuseWarn time.Time
	refusedSince   int64
	// warnedTooLarge: the log line about requests too large is out.
	warnedTooLarge bool
	// warnedInvalidContext: the log line about invalid TRACEPARENTs is out.
	warnedInvalidContext bool
	lastTableWarn        time.Time
	tableDropsSince      int64 // process table drops since the last warning
}

func newReceiver(set receiver.Settings, cfg *Config) (*execsnoopReceiver, error) {
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "ebpf",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	telemetry, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &execsnoopReceiver{cfg: cfg, set: set, obsrecv: obsrecv, telemetry: telemetry}, nil
}

// Start is called once per pipeline; the first call starts the probe.
func (r *execsnoopReceiver) Start(context.Context, component.Host) error {
	r.startOnce.Do(func() { r.startErr = r.start() })
	return r.startErr
}

func (r *execsnoopReceiver) start() error {
	redactor, err := r.cfg.Redaction.redactor()
	if err != nil {
		return fmt.Errorf("execsnoop receiver: %w", err)
	}
	ids, err := r.startHashing()
	if err != nil {
		return fmt.Errorf("execsnoop receiver: %w", err)
	}
	spans := r.tracesNext != nil
	probe, err := bpf.Open(r.cfg.probeOptions(spans))
	if err != nil {
		if ids != nil {
			ids.hasher.Close()
		}
		return fmt.Errorf("execsnoop receiver: %w", err)
	}
	r.probe = probe
	mapper := &procattr.Mapper{Redactor: redactor, ExecutableFile: r.cfg.ExecutableFile, Layers: overlay.New("/proc"),
		Omit: procattr.GroupsAll &^ r.cfg.groups()}
	if r.cfg.lineage() {
		mapper.Table = r.loadProcessTable(redactor)
	}
	if root, err := cgroup.V2Root(); err == nil {
		mapper.Cgroups = cgroup.NewResolver(root)
	} else {
		r.set.Logger.Warn("no cgroup v2 hierarchy: records carry no cgroup path or container.id", zap.Error(err))
	}
	if _, err := procattr.BootID(); err != nil {
		r.set.Logger.Warn("the host's boot id is unreadable: execsnoop.exec.id is unique on this host only within this boot", zap.Error(err))
	}
	report := probe.KernelReport()
	r.set.Logger.Info("tracing process execs",
		zap.String("kernel", report.Kernel),
		zap.String("transport", string(probe.Transport())),
		zap.String("failed_exec_hook", string(report.FailedExecHook)),
		zap.String("failed_exec_attach", report.Features["failed_exec_attach"]),
		zap.String("user_registers", report.Features["user_regs"]),
		zap.Strings("kernel_notes", report.Notes),
		zap.Int("buffer_size", r.cfg.Buffer.Size),
		zap.String("failed_execs", r.cfg.FailedExecs),
		zap.Bool("exits", r.cfg.Exits),
		zap.Strings("exec_context", r.cfg.ExecContext),
		zap.Bool("logs", r.logsNext != nil),
		zap.Bool("spans", spans),
		zap.Bool("trace_context_from_env", spans && r.cfg.Traces.ContextFromEnv),
		zap.Bool("redaction", redactor != nil),
		zap.Bool("executable_hash", r.cfg.Executable.Hash.Enabled))
	r.logKernelLimits()
	out := &outputs{mapper: mapper, ids: ids, sendq: make(chan sendJob, sendQueue), table: mapper.Table}
	if r.logsNext != nil {
		out.logs = newLogBatch(mapper, out.ids, r.set.BuildInfo.Version)
	}
	if spans {
		out.spans = newSpanBatch(out.ids, r.set.BuildInfo.Version)
		out.tracker = newSpanTracker(mapper, out.ids, &r.cfg.Traces)
		if r.cfg.Traces.AdoptRunning {
			r.adoptRunning(out)
		}
	}
	r.done = make(chan struct{})
	out.sent = make(chan struct{})
	go r.send(out)
	go r.run(out)
	return nil
}

// loadProcessTable fills the lineage table with the processes running now.
// The probe is attached first, so that a process that forks, execs or exits
// meanwhile is corrected by its event.
func (r *execsnoopReceiver) loadProcessTable(redactor *redact.Redactor) *proctable.Table {
	t := proctable.New(proctable.Config{MaxProcesses: r.cfg.Lineage.MaxProcesses,
		MaxAncestors: r.cfg.Lineage.MaxAncestors, ArgsBytes: r.cfg.Lineage.ParentArgsBytes, Redactor: redactor})
	n, err := t.LoadProc("/proc")
	if err != nil {
		r.set.Logger.Warn("cannot read the running processes from /proc: the parents of their execs are unknown", zap.Error(err))
	}
	r.set.Logger.Info("process table filled from /proc", zap.Int("processes", n), zap.Int("max_processes", r.cfg.Lineage.MaxProcesses))
	// Counted before the receiver is ready: more processes run than the
	// table holds.
	r.reportTableDrops(context.Background(), t.Dropped())
	return t
}

// adoptRunning opens spans for the processes already running. The probe is
// attached first, so a process that exits meanwhile still ends its span.
func (r *execsnoopReceiver) adoptRunning(out *outputs) {
	boot, err := bootTime("/proc")
	if err != nil {
		r.set.Logger.Warn("cannot adopt running processes: /proc/uptime is unreadable", zap.Error(err))
		return
	}
	now := time.Now()
	n := out.tracker.adopt(runningProcesses("/proc", boot), func(s ptrace.Span, id *exehash.Result) { out.spans.add(s, id, procattr.Container{}, now) })
	r.set.Logger.Info("adopted running processes into traces", zap.Int("spans", n))
}

// outputs are what the reading goroutine builds from events.
type outputs struct {
	mapper  *procattr.Mapper
	logs    *logBatch        // nil without a logs pipeline
	spans   *spanBatch       // nil without a traces pipeline
	tracker *spanTracker     // likewise
	table   *proctable.Table // nil without the lineage group
	ids     *identities      // nil when executable.hash.enabled is off
	// sendq carries full batches to the sending goroutine, which closes
	// sent when sendq is closed and drained.
	sendq chan sendJob
	sent  chan struct{}
}

// run reads events until the probe is stopped, sending a batch whenever it
// is full or old enough.
func (r *execsnoopReceiver) run(out *outputs) {
	defer close(r.done)
	if out.mapper.Cgroups != nil {
		defer out.mapper.Cgroups.Close()
	}
	defer func() {
		close(out.sendq)
		<-out.sent
		if out.ids != nil {
			out.ids.hasher.Close()
		}
	}()
	var ev bpf.Event
	readSinceDrain := false
	var statsAt time.Time
	for {
		err := r.probe.Read(&ev)
		now := time.Now()
		switch {
		case err == nil:
			readSinceDrain = true
			r.handle(&ev, now, out)
		case errors.Is(err, bpf.ErrDrained):
			// And at a burst's end: the next Read may wait without bound.
			if !readSinceDrain || now.Sub(statsAt) >= statsEvery {
				r.reportStats(out)
				statsAt = now
			}
			// A drain that read nothing ends a burst, and the next Read
			// may wait for the next event without bound: send what is
			// batched now rather than when that event comes.
			if !readSinceDrain {
				r.flush(out)
			}
			readSinceDrain = false
		case errors.Is(err, bpf.ErrClosed):
			if out.tracker != nil {
				out.tracker.endAll(now, func(s ptrace.Span, id *exehash.Result) { out.spans.add(s, id, procattr.Container{}, now) })
			}
			r.flush(out)
			r.reportStats(out)
			return
		default:
			r.set.Logger.Error("reading events failed; the receiver stops", zap.Error(err))
			r.flush(out)
			r.reportStats(out)
			return
		}
		if r.due(out, now) {
			r.flush(out)
		}
	}
}

// handle turns one event into a log record and span updates.
func (r *execsnoopReceiver) handle(ev *bpf.Event, now time.Time, out *outputs) {
	var link spanLink
	if out.tracker != nil {
		link.traceID, link.spanID, link.ok = out.tracker.handle(ev, func(s ptrace.Span, id *exehash.Result) { out.spans.add(s, id, out.mapper.Container(ev), now) })
	}
	if out.logs != nil && ev.Kind != bpf.KindFork && (ev.Kind != bpf.KindExit || r.cfg.Exits) {
		if r.cfg.Filters.keepComm(ev.Comm) {
			out.logs.add(ev, now, link)
		} else {
			r.filtered++
		}
	}
	// After the event's record and span: the table answers an exec's
	// lineage as it was before the exec.
	if out.table != nil {
		out.table.Observe(ev)
	}
}

// due reports whether a batch is full or old enough to send.
func (r *execsnoopReceiver) due(out *outputs, now time.Time) bool {
	due := func(full bool, count int, started time.Time) bool {
		return full || count > 0 && now.Sub(started) >= r.cfg.Batch.FlushInterval
	}
	return out.logs != nil && due(out.logs.full(r.cfg.Batch.MaxSize), out.logs.count, out.logs.started) ||
		out.spans != nil && due(out.spans.full(r.cfg.Batch.MaxSize), out.spans.count, out.spans.started)
}

// flush hands the batches to the sending goroutine.
func (r *execsnoopReceiver) flush(out *outputs) {
	var job sendJob
	if out.logs != nil && out.logs.count > 0 {
		job.logCount = out.logs.count
		var fills []fill
		job.logs, fills = out.logs.take()
		job.fills = append(job.fills, fills...)
	}
	if out.spans != nil && out.spans.count > 0 {
		job.spanCount = out.spans.count
		var fills []fill
		job.traces, fills = out.spans.take()
		job.fills = append(job.fills, fills...)
	}
	if job.logCount > 0 || job.spanCount > 0 {
		out.sendq <- job
	}
}

// refused counts and reports (rate-limited) a batch the next consumer
// refused (e.g. memory_limiter): it is dropped, and reading goes on so that
// the kernel buffer keeps draining.
func (r *execsnoopReceiver) refused(count int, err error) {
	if err == nil {
		return
	}
	r.telemetry.ExecsnoopReceiverRecordsRefused.Add(context.Background(), int64(count))
	if tooLarge(err) && !r.warnedTooLarge {
		// Once: every later batch of that size fails the same way.
		r.set.Logger.Error("the next hop refused a request as too large; its records are dropped (counted in records_refused). "+
			"Lower the exporter's sending_queue.batch.max_size (sizer: bytes), or raise max_recv_msg_size_mib "+
			"(OTLP/gRPC, default 4) or max_request_body_size (OTLP/HTTP, default 20 MiB) on the receiving collector",
			zap.Int("records", count), zap.Int("receiver_max_request_bytes", maxRequestBytes), zap.Error(err))
		r.warnedTooLarge = true
		return
	}
	r.refusedSince += int64(count)
	if time.Since(r.lastRefuseWarn) >= warnEvery {
		r.set.Logger.Warn("the next consumer refused log records or spans; they are dropped",
			zap.Int64("dropped_since_last_warning", r.refusedSince), zap.Error(err))
		r.lastRefuseWarn = time.Now()
		r.refusedSince = 0
	}
}

// reportStats adds what the probe counted since the last call to the
// receiver's telemetry, and warns (rate-limited) about lost events.
func (r *execsnoopReceiver) reportStats(out *outputs) {
	ctx := context.Background()
	now := r.probe.Stats()
	if d := now.Read - r.reported.Read; d > 0 {
		r.telemetry.ExecsnoopReceiverEventsRead.Add(ctx, int64(d))
	}
	if d := now.DecodeErrors - r.reported.DecodeErrors; d > 0 {
		r.telemetry.ExecsnoopReceiverEventsDecodeErrors.Add(ctx, int64(d))
	}
	if out.tracker != nil {
		r.reportTraceContext(ctx, out.tracker)
	}
	out.ids.reportStats(ctx)
	if out.tracker != nil && out.tracker.dropped > 0 {
		r.telemetry.ExecsnoopReceiverSpansDropped.Add(ctx, out.tracker.dropped)
		r.set.Logger.Warn("process spans dropped: more processes are tracked than traces.max_open_spans",
			zap.Int64("dropped", out.tracker.dropped), zap.Int("max_open_spans", r.cfg.Traces.MaxOpenSpans))
		out.tracker.dropped = 0
	}
	if out.table != nil {
		r.reportTableDrops(ctx, out.table.Dropped())
	}
	if r.filtered > 0 {
		r.telemetry.ExecsnoopReceiverRecordsFiltered.Add(ctx, r.filtered)
		r.filtered = 0
	}
	lost := now.Lost() - r.reported.Lost()
	if lost > 0 {
		r.telemetry.ExecsnoopReceiverEventsLost.Add(ctx, int64(lost))
	}
	if now.Lost() > r.warnedLost && time.Since(r.lastLostWarn) >= warnEvery {
		r.set.Logger.Warn("process events were lost in the kernel: the buffer was full; raise buffer.size or lower buffer.drain_period",
			zap.Uint64("lost_total", now.Lost()),
			zap.Uint64("lost_exec", now.LostExec), zap.Uint64("lost_exit", now.LostExit),
			zap.Uint64("lost_samples", now.LostSamples),
			zap.String("transport", string(r.probe.Transport())), zap.Int("buffer_size", r.cfg.Buffer.Size))
		r.lastLostWarn = time.Now()
		r.warnedLost = now.Lost()
	}
	r.reported = now
}

// reportTableDrops counts processes the lineage table dropped at its
// bound, and warns at most every warnEvery.
func (r *execsnoopReceiver) reportTableDrops(ctx context.Context, dropped int64) {
	if dropped == 0 {
		return
	}
	r.telemetry.ExecsnoopReceiverProcessTableDropped.Add(ctx, dropped)
	r.tableDropsSince += dropped
	if time.Since(r.lastTableWarn) >= warnEvery {
		r.set.Logger.Warn("the process table is full: the oldest processes were dropped, and their children's exec records name no parent (parent.source unknown); raise lineage.max_processes",
			zap.Int64("dropped_since_last_warning", r.tableDropsSince), zap.Int("max_processes", r.cfg.Lineage.MaxProcesses))
		r.lastTableWarn = time.Now()
		r.tableDropsSince = 0
	}
}

// Shutdown is called once per pipeline; the first call stops the probe,
// sends what it still held, and frees it.
func (r *execsnoopReceiver) Shutdown(context.Context) error {
	r.shutdownOnce.Do(func() {
		if r.probe != nil {
			r.shutdownErr = r.probe.Stop()
			<-r.done
			r.shutdownErr = errors.Join(r.shutdownErr, r.probe.Close())
		}
		r.telemetry.Shutdown()
		if r.release != nil {
			r.release()
		}
	})
	return r.shutdownErr
}
