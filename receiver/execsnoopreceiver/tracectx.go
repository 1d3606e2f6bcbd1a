package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"context"

	"go.uber.org/zap"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

// reportTraceContext adds the trace-context counts since the last call to
// the telemetry, and says once when invalid values were first seen.
func (r *execsnoopReceiver) reportTraceContext(ctx context.Context, t *spanTracker) {
	if t.invalidContext > 0 {
		r.telemetry.ExecsnoopReceiverTraceContextInvalid.Add(ctx, t.invalidContext)
		if !r.warnedInvalidContext {
			r.set.Logger.Info("ignoring TRACEPARENT values that are not W3C traceparents (counted in execsnoop.receiver.trace_context.invalid); those processes' spans are placed as if they had none",
				zap.Int64("execs", t.invalidContext))
			r.warnedInvalidContext = true
		}
		t.invalidContext = 0
	}
	if t.envUnreadable > 0 {
		r.telemetry.ExecsnoopReceiverTraceContextEnvUnreadable.Add(ctx, t.envUnreadable)
		t.envUnreadable = 0
	}
}

// logKernelLimits says once what this kernel cannot do of the exit
// accounting.
func (r *execsnoopReceiver) logKernelLimits() {
	for _, limit := range bpf.KernelLimits() {
		r.set.Logger.Info("kernel limit: " + limit)
	}
}
