//go:generate go tool mdatagen metadata.yaml

// Package execsnoopreceiver implements a receiver that emits a log record for
// every process exec and exit on a Linux host, observed by an eBPF program.
package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"
