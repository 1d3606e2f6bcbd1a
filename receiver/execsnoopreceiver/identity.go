package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadata"
)

// identityBytes is what the identity attributes add to a record's OTLP
// size at most (a sha256, three build ids and their keys), counted when
// the record is batched so that a request stays within its bound.
const identityBytes = 400

// identities puts each executable's content identity on its exec record
// and span. The reading goroutine only looks the file up (a cache hit, or
// a job queued for the hasher's workers); a record whose hash is not
// known yet goes into its batch with a fill, which the sending goroutine
// completes, waiting until the record's deadline at most.
type identities struct {
	hasher    *exehash.Hasher
	wait      time.Duration
	telemetry *metadata.TelemetryBuilder
	reported  uint64 // hasher's Hashed already added to telemetry
}

// fill is a record's identity still to come.
type fill struct {
	attrs    pcommon.Map
	res      *exehash.Result
	deadline time.Time
}

// lookup is the identity of the file a successful exec ran (nil for other
// events, or when hashing is off).
func (ids *identities) lookup(ev *bpf.Event) *exehash.Result {
	if ids == nil {
		return nil
	}
	f, ok := exehash.FileOf(ev)
	if !ok {
		return nil
	}
	return ids.hasher.Lookup(f)
}

// attach puts res on attrs now if it is known, else adds a fill to
// pending; it returns the bytes the record may grow by.
func (ids *identities) attach(res *exehash.Result, attrs pcommon.Map, observed time.Time, pending *[]fill) int {
	if res == nil {
		return 0
	}
	if res.Ready() {
		ids.put(attrs, res.Identity())
	} else {
		*pending = append(*pending, fill{attrs: attrs, res: res, deadline: observed.Add(ids.wait)})
	}
	return identityBytes
}

// complete waits for each fill until its deadline at most and puts what is
// known (Timeout past it). Runs on the sending goroutine.
func (ids *identities) complete(fills []fill) {
	for _, f := range fills {
		ids.put(f.attrs, f.res.Wait(f.deadline))
	}
}

func (ids *identities) put(attrs pcommon.Map, id exehash.Identity) {
	procattr.Identity(&id, pmapSink(attrs))
	if id.Missing != exehash.ReasonNone {
		ids.telemetry.ExecsnoopReceiverExecutableHashMissing.Add(context.Background(), 1,
			metric.WithAttributes(attribute.String("reason", id.Missing.String())))
	}
}

// reportStats adds the files hashed since the last call to telemetry.
func (ids *identities) reportStats(ctx context.Context) {
	if ids == nil {
		return
	}
	hashed := ids.hasher.Stats().Hashed
	if d := hashed - ids.reported; d > 0 {
		ids.telemetry.ExecsnoopReceiverExecutableHashed.Add(ctx, int64(d))
	}
	ids.reported = hashed
}
