//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

func freePort() int {
	port, err := testenv.FreePort()
	check(err)
	return port
}

// batching is how the collector's requests are cut.
type batching int

const (
	byBytes batching = iota // config/otlp.yaml: the exporter's queue batches by bytes
	byCount                 // the batch processor's default 8192 records, no byte bound
)

// countBatching is config/otlp.yaml without the exporter's byte-sized
// batches (the batch processor is added by the overlay).
func countBatching() string {
	raw, err := os.ReadFile("config/otlp.yaml")
	check(err)
	cut := regexp.MustCompile(`(?m)^    sending_queue:\n(^      .*\n|^        .*\n)+`)
	if !cut.Match(raw) {
		fail("config/otlp.yaml has no sending_queue block to take out for the count-batching row")
	}
	return string(cut.ReplaceAll(raw, nil))
}

// otelcol is a collector binary and its node-agent config as shipped.
type otelcol struct{ bin, otlpConfig string }

func collector(tmp string, build otelcol, transport, compression string, batching batching, name string, workers int) result {
	bin := build.bin
	sinkPort, metricsPort := freePort(), freePort()
	sinkOut := filepath.Join(tmp, "sink.json")
	_ = os.Remove(sinkOut)
	sinkCfg := writeFile(tmp, "sink.yaml", collectortest.SinkConfig(sinkPort, sinkOut, "logs"))
	processors := ""
	if batching == byCount {
		processors = `
processors:
  batch:`
	}
	overlay := fmt.Sprintf(`
receivers:
  execsnoop:
    buffer:
      type: %s%s
exporters:
  otlp_grpc:
    endpoint: 127.0.0.1:%d
    compression: %s
service:%s`, transport, processors, sinkPort, compression, collectortest.TelemetryConfig(metricsPort))
	if batching == byCount {
		overlay += `  pipelines:
    logs:
      processors: [memory_limiter, batch]
`
	}
	sourceCfg := writeFile(tmp, "source.yaml", overlay)
	shipped := build.otlpConfig
	if batching == byCount {
		shipped = writeFile(tmp, "count.yaml", countBatching())
	}
	sinkLog, sourceLog := filepath.Join(tmp, "sink.log"), filepath.Join(tmp, "source.log")
	sink := exec.Command(bin, "--config", sinkCfg)
	sink.Stdout, sink.Stderr = create(sinkLog), create(sinkLog+".out")
	started(sink, fileContains(sinkLog+".out", "Everything is ready"))
	defer stop(sink)
	source := exec.Command(bin, "--config", shipped, "--config", sourceCfg)
	source.Stdout, source.Stderr = create(sourceLog), create(sourceLog+".err")
	started(source, fileContains(sourceLog+".err", "Everything is ready"))

	s, u := measure(source.Process.Pid, workers, "otelcol")
	rss := peakRSSMiB(source.Process.Pid)
	lost := collectortest.Metric(metricsPort, "otelcol_execsnoop_receiver_events_lost")
	sys := syscallCost()
	stop(source)
	time.Sleep(500 * time.Millisecond) // the sink's file exporter flush
	captured, p99 := sinkRecords(sinkOut, s.marker)
	return result{tracer: name, rate: s.rate, captured: captured,
		lost: strconv.Itoa(int(lost)), peakRSSMiB: rss,
		p99LatencyMs: p99, hasLatency: true, syscallNs: sys, usage: u}
}

func writeFile(dir, name, content string) string {
	path := filepath.Join(dir, name)
	check(os.WriteFile(path, []byte(content), 0o644))
	return path
}

// sinkRecords counts the storm's exec records in the sink and the p99 of
// observed (read by the receiver) minus event time.
func sinkRecords(path, marker string) (int, float64) {
	var delays []time.Duration
	collectortest.EachLogRecord(path, func(_ plog.ResourceLogs, _ plog.ScopeLogs, lr plog.LogRecord) {
		args, _ := collectortest.Attr(lr.Attributes(), "process.command_args").([]any)
		if lr.EventName() == "process.exec" && len(args) == 2 && strings.HasPrefix(fmt.Sprint(args[1]), marker+"-") {
			delays = append(delays, lr.ObservedTimestamp().AsTime().Sub(lr.Timestamp().AsTime()))
		}
	})
	if len(delays) == 0 {
		return 0, 0
	}
	slices.Sort(delays)
	return len(delays), float64(delays[len(delays)*99/100]) / 1e6
}
