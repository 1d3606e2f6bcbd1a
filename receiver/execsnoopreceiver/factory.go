package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadata"
)

// NewFactory returns the factory of the execsnoop receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		receiver.WithLogs(createLogsReceiver, metadata.LogsStability),
		receiver.WithTraces(createTracesReceiver, metadata.TracesStability),
	)
}

func createLogsReceiver(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := sharedReceiver(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.logsNext = next
	return r, nil
}

func createTracesReceiver(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := sharedReceiver(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.tracesNext = next
	return r, nil
}
