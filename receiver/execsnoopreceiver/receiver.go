package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/cgroup"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadata"
)

// Warnings about lost or refused data repeat at most this often.
const warnEvery = 10 * time.Second

type execsnoopReceiver struct {
	cfg       *Config
	set       receiver.Settings
	next      consumer.Logs
	obsrecv   *receiverhelper.ObsReport
	telemetry *metadata.TelemetryBuilder

	probe *bpf.Probe
	done  chan struct{}

	// Owned by the reading goroutine.
	reported       bpf.Stats // the probe's counters already added to telemetry
	filtered       int64     // events the comm filters dropped, not yet reported
	lastLostWarn   time.Time
	warnedLost     uint64 // the lost total at the last warning
	lastRefuseWarn time.Time
	refusedSince   int64
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*execsnoopReceiver, error) {
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
	return &execsnoopReceiver{cfg: cfg, set: set, next: next, obsrecv: obsrecv, telemetry: telemetry}, nil
}

func (r *execsnoopReceiver) Start(_ context.Context, _ component.Host) error {
	redactor, err := r.cfg.Redaction.redactor()
	if err != nil {
		return fmt.Errorf("execsnoop receiver: %w", err)
	}
	probe, err := bpf.Open(r.cfg.probeOptions(os.Getpid()))
	if err != nil {
		return fmt.Errorf("execsnoop receiver: %w", err)
	}
	r.probe = probe
	mapper := &procattr.Mapper{Redactor: redactor}
	if root, err := cgroup.V2Root(); err == nil {
		mapper.Cgroups = cgroup.NewResolver(root)
	} else {
		r.set.Logger.Warn("no cgroup v2 hierarchy: records carry no cgroup path or container.id", zap.Error(err))
	}
	r.set.Logger.Info("tracing process execs",
		zap.String("transport", string(probe.Transport())),
		zap.Int("buffer_size", r.cfg.Buffer.Size),
		zap.String("failed_execs", r.cfg.FailedExecs),
		zap.Bool("exits", r.cfg.Exits),
		zap.Bool("redaction", redactor != nil))
	r.done = make(chan struct{})
	go r.run(newLogBatch(mapper, r.set.BuildInfo.Version))
	return nil
}

// run reads events until the probe is closed, sending a batch whenever it
// is full or old enough.
func (r *execsnoopReceiver) run(batch *logBatch) {
	defer close(r.done)
	var ev bpf.Event
	for {
		err := r.probe.Read(&ev)
		now := time.Now()
		switch {
		case err == nil:
			if r.cfg.Filters.keepComm(ev.Comm) {
				batch.add(&ev, now)
			} else {
				r.filtered++
			}
		case errors.Is(err, bpf.ErrDrained):
			r.reportStats()
		case errors.Is(err, bpf.ErrClosed):
			r.flush(batch)
			r.reportStats()
			return
		default:
			r.set.Logger.Error("reading events failed; the receiver stops", zap.Error(err))
			r.flush(batch)
			r.reportStats()
			return
		}
		if batch.count >= r.cfg.Batch.MaxSize || batch.count > 0 && now.Sub(batch.started) >= r.cfg.Batch.FlushInterval {
			r.flush(batch)
		}
	}
}

func (r *execsnoopReceiver) flush(batch *logBatch) {
	if batch.count == 0 {
		return
	}
	count := batch.count
	ctx := r.obsrecv.StartLogsOp(context.Background())
	err := r.next.ConsumeLogs(ctx, batch.take())
	r.obsrecv.EndLogsOp(ctx, metadata.Type.String(), count, err)
	if err == nil {
		return
	}
	// The pipeline refused the batch (e.g. memory_limiter): it is dropped,
	// counted, and reported; reading goes on so the kernel buffer keeps draining.
	r.telemetry.ExecsnoopReceiverRecordsRefused.Add(context.Background(), int64(count))
	r.refusedSince += int64(count)
	if time.Since(r.lastRefuseWarn) >= warnEvery {
		r.set.Logger.Warn("the next consumer refused log records; they are dropped",
			zap.Int64("dropped_since_last_warning", r.refusedSince), zap.Error(err))
		r.lastRefuseWarn = time.Now()
		r.refusedSince = 0
	}
}

// reportStats adds what the probe counted since the last call to the
// receiver's telemetry, and warns (rate-limited) about lost events.
func (r *execsnoopReceiver) reportStats() {
	ctx := context.Background()
	now := r.probe.Stats()
	if d := now.Read - r.reported.Read; d > 0 {
		r.telemetry.ExecsnoopReceiverEventsRead.Add(ctx, int64(d))
	}
	if d := now.DecodeErrors - r.reported.DecodeErrors; d > 0 {
		r.telemetry.ExecsnoopReceiverEventsDecodeErrors.Add(ctx, int64(d))
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

func (r *execsnoopReceiver) Shutdown(context.Context) error {
	var err error
	if r.probe != nil {
		err = r.probe.Close()
		<-r.done
	}
	r.telemetry.Shutdown()
	return err
}
