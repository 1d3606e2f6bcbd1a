package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadata"
)

// Config is the configuration of the execsnoop receiver.
type Config struct{}

// NewFactory returns the factory for the execsnoop receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogsReceiver, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{}
}

func createLogsReceiver(
	_ context.Context,
	_ receiver.Settings,
	_ component.Config,
	_ consumer.Logs,
) (receiver.Logs, error) {
	return &execsnoopReceiver{}, nil
}

type execsnoopReceiver struct{}

func (*execsnoopReceiver) Start(context.Context, component.Host) error { return nil }

func (*execsnoopReceiver) Shutdown(context.Context) error { return nil }
