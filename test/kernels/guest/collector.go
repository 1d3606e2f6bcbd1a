//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
	"github.com/otelexecsnoop/execsnoop/test/kernels/internal/result"
)

// The image's collector, when the harness appends it (test/kernels
// -collector-image), and the files of its run.
const (
	collector       = "/bin/otelcol-execsnoop"
	collectorConfig = "/tmp/collector.yaml"
	collectorOutput = "/tmp/collector-logs.json"
)

// The receiver's defaults and a file exporter that flushes often; no
// telemetry port to bind.
var collectorYAML = `receivers:
  execsnoop: {}
exporters:
  file:
    path: ` + collectorOutput + `
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [execsnoop]
      exporters: [file]
`

// runCollector starts the image's collector with a file exporter, waits
// until it is ready, execs /bin/true with a unique argument, waits until
// the file holds a record of that exec, and stops the collector.
func runCollector(platform string) (c result.Collector) {
	c.Ran, c.Platform = true, platform
	var stderr testenv.SyncBuffer
	fail := func(format string, args ...any) result.Collector {
		c.Error = fmt.Sprintf(format, args...)
		if tail := tailLines(stderr.String(), 8); tail != "" {
			c.Error += "; its stderr ends: " + tail
		}
		logf("image collector: %s", c.Error)
		return c
	}
	if _, err := os.Stat(collector); err != nil {
		return fail("the harness gave no collector: %v", err)
	}
	if err := os.WriteFile(collectorConfig, []byte(collectorYAML), 0o644); err != nil {
		return fail("%v", err)
	}
	cmd := exec.Command(collector, "--config", collectorConfig)
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fail("starting %s: %v", collector, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// stop sends SIGTERM and waits for the collector's end (bounded).
	stopped := false
	stop := func() error {
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			return err
		case <-time.After(tracerStartup):
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("it did not end within %s of SIGTERM", tracerStartup)
		}
	}
	defer func() {
		if !stopped {
			stop()
		}
	}()
	// wait polls cond until it holds, the collector ends or bound passes.
	wait := func(what string, bound time.Duration, cond func() bool) error {
		deadline := time.After(bound)
		for !cond() {
			select {
			case err := <-done:
				done <- err // for the deferred stop
				return fmt.Errorf("the collector ended (%v) before %s", err, what)
			case <-deadline:
				return fmt.Errorf("no %s within %s", what, bound)
			case <-time.After(50 * time.Millisecond):
			}
		}
		return nil
	}
	if err := wait(`"Everything is ready"`, tracerStartup, func() bool {
		return strings.Contains(stderr.String(), "Everything is ready")
	}); err != nil {
		return fail("%v", err)
	}
	c.ReadySeconds = time.Since(start).Seconds()
	marker := fmt.Sprintf("ktest-image-collector-%d", time.Now().UnixNano())
	exec0 := time.Now()
	if out, err := exec.Command("/bin/true", marker).CombinedOutput(); err != nil {
		return fail("/bin/true %s: %v %s", marker, err, out)
	}
	if err := wait("exec record of /bin/true "+marker+" in "+collectorOutput, time.Minute, func() bool {
		return hasExecRecord(collectorOutput, marker)
	}); err != nil {
		return fail("%v", err)
	}
	c.RecordSeconds = time.Since(exec0).Seconds()
	if err := stop(); err != nil {
		return fail("stopping the collector: %v", err)
	}
	c.OK = true
	logf("image collector (%s): ready in %.1fs, exec record in %.1fs", platform, c.ReadySeconds, c.RecordSeconds)
	return c
}

// hasExecRecord reports whether the file exporter's output (one OTLP/JSON
// logs request a line) has a log record whose process.command_args hold
// marker.
func hasExecRecord(path, marker string) bool {
	data, err := os.ReadFile(path)
	if err != nil || !bytes.Contains(data, []byte(marker)) {
		return false
	}
	type value struct {
		StringValue string `json:"stringValue"`
		ArrayValue  struct {
			Values []value `json:"values"`
		} `json:"arrayValue"`
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var req struct {
			ResourceLogs []struct {
				ScopeLogs []struct {
					LogRecords []struct {
						Attributes []struct {
							Key   string `json:"key"`
							Value value  `json:"value"`
						} `json:"attributes"`
					} `json:"logRecords"`
				} `json:"scopeLogs"`
			} `json:"resourceLogs"`
		}
		if json.Unmarshal(sc.Bytes(), &req) != nil {
			continue // a line still being written
		}
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					for _, a := range lr.Attributes {
						if a.Key == procattr.ProcessCommandArgs && slices.ContainsFunc(a.Value.ArrayValue.Values,
							func(v value) bool { return v.StringValue == marker }) {
							return true
						}
					}
				}
			}
		}
	}
	return false
}

// tailLines is the last n lines of s on one line.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " / ")
}
