package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"sync"

	"go.opentelemetry.io/collector/receiver"
)

// One receiver (and so one set of kernel programs) serves both the logs
// and the traces pipeline of a configuration, as the otlp receiver shares
// its server; the factory finds it by the config it was created from.
var (
	sharedMu  sync.Mutex
	receivers = map[*Config]*execsnoopReceiver{}
)

func sharedReceiver(set receiver.Settings, cfg *Config) (*execsnoopReceiver, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if r, ok := receivers[cfg]; ok {
		return r, nil
	}
	r, err := newReceiver(set, cfg)
	if err != nil {
		return nil, err
	}
	r.release = func() {
		sharedMu.Lock()
		defer sharedMu.Unlock()
		delete(receivers, cfg)
	}
	receivers[cfg] = r
	return r, nil
}
