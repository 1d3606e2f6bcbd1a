package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"context"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadata"
)

// sendQueue is how many batches may wait for the sending goroutine; past
// it the reader waits, as it waited for the next consumer before.
const sendQueue = 4

// sendJob is one flush: the batches and the identities they still need.
type sendJob struct {
	logs      plog.Logs
	logCount  int
	traces    ptrace.Traces
	spanCount int
	fills     []fill
}

// send completes each job's identities (each record waits until its own
// deadline at most) and hands the batches to the next consumers, in the
// order they were flushed, so that a file being hashed never stops the
// reading of the kernel buffer.
func (r *execsnoopReceiver) send(out *outputs) {
	defer close(out.sent)
	for job := range out.sendq {
		if len(job.fills) > 0 {
			out.ids.complete(job.fills)
		}
		if job.logCount > 0 {
			ctx := r.obsrecv.StartLogsOp(context.Background())
			err := r.logsNext.ConsumeLogs(ctx, job.logs)
			r.obsrecv.EndLogsOp(ctx, metadata.Type.String(), job.logCount, err)
			r.refused(job.logCount, err)
		}
		if job.spanCount > 0 {
			ctx := r.obsrecv.StartTracesOp(context.Background())
			err := r.tracesNext.ConsumeTraces(ctx, job.traces)
			r.obsrecv.EndTracesOp(ctx, metadata.Type.String(), job.spanCount, err)
			r.refused(job.spanCount, err)
		}
	}
}

// startHashing starts the hasher when executable.hash.enabled is on, and
// says once if other users' executables may be unreadable.
func (r *execsnoopReceiver) startHashing() (*identities, error) {
	h := r.cfg.Executable.Hash
	if !h.Enabled {
		return nil, nil
	}
	hasher, err := exehash.New(exehash.Options{MaxSize: int64(h.MaxSize), CacheEntries: h.CacheEntries})
	if err != nil {
		return nil, err
	}
	if ok, err := exehash.CanReadOthers(); !ok {
		r.set.Logger.Warn("executable hashing: no CAP_SYS_PTRACE, so /proc/PID/exe of other users' processes cannot be opened; "+
			"their files are read through their paths where this user may read them, else their records carry "+
			"execsnoop.executable.hash.missing=unreadable. Grant CAP_SYS_PTRACE to hash them, or set executable.hash.enabled: false",
			zap.Error(err))
	}
	return &identities{hasher: hasher, wait: r.cfg.hashWait(), telemetry: r.telemetry}, nil
}
