package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadata"
)

// containerBatch is what the log and span batches share: one slice of
// records per container, under a resource that carries container.id and
// k8s.pod.uid (so that processors such as k8s_attributes can associate
// pods), plus the
// batch's size and age. S is the record slice type.
type containerBatch[S any] struct {
	scopeVersion string
	// appendResource adds a resource with one scope to the batch's data
	// and returns them with the scope's record slice.
	appendResource func() (pcommon.Resource, pcommon.InstrumentationScope, S)

	byContainer map[procattr.Container]S
	count       int
	bytes       int // OTLP protobuf size, at most maxRequestBytes
	started     time.Time
}

// full reports whether the batch is to be sent: maxSize records, or so
// many bytes that one more record could take it past maxRequestBytes.
func (b *containerBatch[S]) full(maxSize int) bool {
	return b.count >= maxSize || b.bytes >= batchFullBytes
}

// slot counts one more record and returns the slice it goes into.
func (b *containerBatch[S]) slot(container procattr.Container, now time.Time) S {
	if b.count == 0 {
		b.started = now
	}
	b.count++
	if records, ok := b.byContainer[container]; ok {
		return records
	}
	b.bytes += resourceBytes
	resource, scope, records := b.appendResource()
	container.Resource(pmapSink(resource.Attributes()))
	scope.SetName(metadata.ScopeName)
	scope.SetVersion(b.scopeVersion)
	b.byContainer[container] = records
	return records
}

func (b *containerBatch[S]) reset() {
	clear(b.byContainer)
	b.count = 0
	b.bytes = 0
}
