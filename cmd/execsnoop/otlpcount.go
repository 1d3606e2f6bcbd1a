package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	sdklog "go.opentelemetry.io/otel/sdk/log"
	collogpb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// This file counts the --otlp path in records: every event the loop sees
// is filtered (-n/-l), dropped (with its reason), exported, or still
// queued (at exit: not exported), and the exit summary and the drop
// warning print that balance.

const (
	// queueSizeEnv and defaultQueueSize are the SDK batch processor's queue
	// bound (its variable and its default). The CLI resolves them itself and
	// passes the result to the SDK, so that its own count of a full queue
	// uses the very bound the SDK enforces.
	queueSizeEnv     = "OTEL_BLRP_MAX_QUEUE_SIZE"
	defaultQueueSize = 2048
)

// queueSize is the bound of each batch processor's queue, as the SDK
// resolves it: the variable if it is a number above 0, else the default.
func queueSize() int {
	if n, err := strconv.Atoi(os.Getenv(queueSizeEnv)); err == nil && n > 0 {
		return n
	}
	return defaultQueueSize
}

// recordCounts is one consistent snapshot of the counts.
type recordCounts struct {
	filtered  uint64            // not made records: -n/-l
	emitted   uint64            // handed to a batch processor
	queueFull uint64            // dropped: the processor's queue was full
	exported  uint64            // accepted by the backend
	rejected  uint64            // dropped: refused in a partial success
	failed    map[string]uint64 // dropped: the export failed (after the SDK's retries), by gRPC code
	queueSize int
}

func (c *recordCounts) failedTotal() (n uint64) {
	for _, v := range c.failed {
		n += v
	}
	return n
}

func (c *recordCounts) dropped() uint64 { return c.queueFull + c.rejected + c.failedTotal() }

// pending is what is still queued or in an export.
func (c *recordCounts) pending() uint64 { return c.emitted - c.exported - c.rejected - c.failedTotal() }

func (c *recordCounts) seen() uint64 { return c.filtered + c.emitted + c.queueFull }

// balance says seen = exported + dropped (by reason) + pending + filtered;
// pendingAs names the pending records.
func (c *recordCounts) balance(pendingAs string) string {
	var reasons []string
	codes := make([]string, 0, len(c.failed))
	for code := range c.failed {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	for _, code := range codes {
		reasons = append(reasons, fmt.Sprintf("%d export failed: %s", c.failed[code], code))
	}
	if c.rejected > 0 {
		reasons = append(reasons, fmt.Sprintf("%d rejected by the backend (partial success)", c.rejected))
	}
	if c.queueFull > 0 {
		reasons = append(reasons, fmt.Sprintf("%d export queue full (%s=%d; raise it)", c.queueFull, queueSizeEnv, c.queueSize))
	}
	why := ""
	if len(reasons) > 0 {
		why = " (" + strings.Join(reasons, ", ") + ")"
	}
	return fmt.Sprintf("%d = %d exported + %d dropped%s + %d %s + %d filtered by -n/-l",
		c.seen(), c.exported, c.dropped(), why, c.pending(), pendingAs, c.filtered)
}

// accounting holds the counts of all providers and prints a warning,
// at most once per warnEvery, when records are dropped.
type accounting struct {
	queueSize int
	warnEvery time.Duration
	w         io.Writer

	mu          sync.Mutex
	c           recordCounts
	warnedTotal uint64 // dropped, at the last warning
	lastWarn    time.Time
	warnTimer   *time.Timer // a warning held back by the rate limit
	stopped     bool
}

func newAccounting(w io.Writer) *accounting {
	a := &accounting{queueSize: queueSize(), warnEvery: lostWarnEvery, w: w}
	a.c.failed = make(map[string]uint64)
	a.c.queueSize = a.queueSize
	return a
}

// filter counts an event -n/-l left out.
func (a *accounting) filter() {
	a.mu.Lock()
	a.c.filtered++
	a.mu.Unlock()
}

// admit counts a record bound for e's batch processor, or drops it when
// that processor holds the queue's bound of records, queued or in an
// export. The SDK's queue would drop its oldest record and only log it;
// as e counts every record from here until its export returns (at least
// what the queue holds), keeping that within the bound means the SDK
// never drops one, and every drop is this one, counted. The price: a
// batch in export takes its share of the bound.
func (a *accounting) admit(e *countingExporter) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e.inflight >= a.queueSize {
		a.c.queueFull++
		a.warnLocked()
		return false
	}
	e.inflight++
	a.c.emitted++
	return true
}

// finished counts the outcome of one export of n records.
func (a *accounting) finished(e *countingExporter, n int, call *exportCall, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e.inflight -= n
	// The partial-success error the SDK returns comes with an OK
	// response: those records were answered, not failed.
	if err == nil || call.ok {
		rejected := min(uint64(max(call.rejected, 0)), uint64(n))
		a.c.exported += uint64(n) - rejected
		a.c.rejected += rejected
		if rejected == 0 {
			return
		}
	} else {
		a.c.failed[failReason(err)] += uint64(n)
	}
	a.warnLocked()
}

// warnLocked prints the drop warning now, or when the rate limit allows.
func (a *accounting) warnLocked() {
	if a.stopped || a.warnTimer != nil {
		return
	}
	if wait := a.warnEvery - time.Since(a.lastWarn); wait > 0 {
		a.warnTimer = time.AfterFunc(wait, func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.warnTimer = nil
			a.printWarningLocked()
		})
		return
	}
	a.printWarningLocked()
}

func (a *accounting) printWarningLocked() {
	total := a.c.dropped()
	if a.stopped || total <= a.warnedTotal {
		return
	}
	fmt.Fprintf(a.w, "execsnoop: OTLP: dropped %d records (total %d); so far %s\n",
		total-a.warnedTotal, total, a.c.balance("queued"))
	a.warnedTotal = total
	a.lastWarn = time.Now()
}

// final stops the warnings and returns the counts: exports that end
// after this are not counted, so the summary adds up.
func (a *accounting) final() recordCounts {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	if a.warnTimer != nil {
		a.warnTimer.Stop()
		a.warnTimer = nil
	}
	c := a.c
	c.failed = maps.Clone(a.c.failed)
	return c
}

// failReason names why an export failed: its gRPC code (the last
// attempt's, after the SDK's retries), else what ended it.
func failReason(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Code().String()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, sdklog.ErrExporterShutdown):
		return "exporter shut down"
	}
	return "error"
}

// countingExporter is one provider's exporter: the shared one, counted.
// inflight (under accounting.mu) is what admit let through and no export
// has returned yet.
type countingExporter struct {
	sdklog.Exporter
	acct     *accounting
	inflight int
}

func (e *countingExporter) Export(ctx context.Context, records []sdklog.Record) error {
	if len(records) == 0 {
		return nil
	}
	call := &exportCall{}
	err := e.Exporter.Export(context.WithValue(ctx, exportCallKey{}, call), records)
	e.acct.finished(e, len(records), call, err)
	return err
}

// exportCall is what the gRPC interceptor learns of one Export: whether
// an attempt was answered OK (then the SDK retries no more), and how many
// records that answer rejected. The SDK reports a partial success only as
// an error text; the response itself says how many.
type exportCall struct {
	ok       bool
	rejected int64
}

type exportCallKey struct{}

// interceptExport records the answer to an export in its exportCall.
func interceptExport(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if call, ok := ctx.Value(exportCallKey{}).(*exportCall); ok && err == nil {
		call.ok = true
		if resp, ok := reply.(*collogpb.ExportLogsServiceResponse); ok {
			call.rejected = resp.GetPartialSuccess().GetRejectedLogRecords()
		}
	}
	return err
}
