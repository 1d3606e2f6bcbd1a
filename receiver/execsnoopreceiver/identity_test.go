package execsnoopreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadata"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadatatest"
)

// A record whose hash does not come by its deadline goes out marked
// timeout, counted by reason; an event with no file adds nothing.
func TestIdentityTimeout(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	tb, err := metadata.NewTelemetryBuilder(metadatatest.NewSettings(tt).TelemetrySettings)
	require.NoError(t, err)
	hasher, err := exehash.New(exehash.Options{MaxSize: exehash.DefaultMaxSize, CacheEntries: 8})
	require.NoError(t, err)
	t.Cleanup(hasher.Close)
	ids := &identities{hasher: hasher, wait: time.Millisecond, telemetry: tb}

	var pending []fill
	slow := pcommon.NewMap()
	assert.Equal(t, identityBytes, ids.attach(exehash.Unresolved(), slow, time.Now().Add(-time.Second), &pending))
	require.Len(t, pending, 1, "an unresolved hash waits in a fill")
	ids.complete(pending) // its deadline has passed: no wait
	v, _ := slow.Get(procattr.ExecutableHashMissing)
	assert.Equal(t, "timeout", v.Str())

	metadatatest.AssertEqualExecsnoopReceiverExecutableHashMissing(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "timeout"))},
	}, metricdatatest.IgnoreTimestamp())

	pending = nil
	assert.Equal(t, 0, ids.attach(nil, pcommon.NewMap(), time.Now(), &pending), "no file: nothing to add")
	assert.Empty(t, pending)
}
