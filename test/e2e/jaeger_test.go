//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// jaegerConfig runs Jaeger v2 all-in-one with in-memory storage, every
// endpoint on loopback.
const jaegerConfig = `
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: mem
    enable_tracing: false
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`

// jaegerBin is bin/jaeger (built by `make jaeger`), or $JAEGER_BIN.
func jaegerBin(t *testing.T) string { return builtTool(t, "JAEGER_BIN", "jaeger", "jaeger") }

// The Jaeger query API's view of a trace.
type jaegerTraces struct {
	Data []struct {
		Spans []struct {
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			Duration      int64  `json:"duration"` // microseconds
			References    []struct {
				RefType string `json:"refType"`
				SpanID  string `json:"spanID"`
			} `json:"references"`
			Tags []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"tags"`
		} `json:"spans"`
	} `json:"data"`
}

// pollJaeger asks Jaeger's query API at url until done accepts the answer
// (the spans of a trace arrive one by one), and fails the test after 20
// seconds saying it found no want and what it found.
func pollJaeger(t *testing.T, url, want string, done func(jaegerTraces) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got jaegerTraces
		if resp, err := http.Get(url); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
		}
		if done(got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Jaeger has no %s: %+v", want, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startJaeger runs Jaeger v2 for the test and returns its OTLP/gRPC and
// query API ports.
func startJaeger(t *testing.T) (otlpPort, queryPort int) {
	jaeger := jaegerBin(t)
	otlpPort, queryPort, grpcPort := testenv.Port(t), testenv.Port(t), testenv.Port(t)
	collectortest.Start(t, jaeger, "jaeger",
		collectortest.WriteConfig(t, "jaeger", fmt.Sprintf(jaegerConfig, queryPort, grpcPort, otlpPort)),
		func(cmd *exec.Cmd) { cmd.Args = []string{jaeger, "--config=file:" + cmd.Args[2]} })
	return otlpPort, queryPort
}

// A shell script's process tree, exported over OTLP into a real trace
// backend, comes back from Jaeger's query API as one trace.
func TestProcessTreeInJaeger(t *testing.T) {
	bin := collectortest.Binary(t)
	otlpPort, queryPort := startJaeger(t)
	marker := fmt.Sprintf("jaeger-%d", time.Now().UnixNano())
	// The source names its service, as a deployment would with the resource
	// processor, so that Jaeger lists it.
	collectortest.Start(t, bin, "traces-source",
		collectortest.WriteConfig(t, "source", sourceConfig(otlpPort, `traces: {roots: ["sh -c *`+marker+`*"]}`,
			"execsnoop-e2e", "traces")))

	sh := exec.Command("/bin/sh", "-c", "/bin/true; sleep 0.2; exit 3", marker)
	_ = sh.Run()
	shPid := fmt.Sprint(sh.Process.Pid)

	url := fmt.Sprintf("http://127.0.0.1:%d/api/traces?service=execsnoop-e2e&lookback=1h&limit=100", queryPort)
	pollJaeger(t, url, fmt.Sprintf("a trace with sh (pid %s) and its children true and sleep", shPid), func(got jaegerTraces) bool {
		for _, trace := range got.Data {
			rootID, status, exitCode := "", "", ""
			for _, s := range trace.Spans {
				for _, tag := range s.Tags {
					if tag.Key == "process.pid" && fmt.Sprint(tag.Value) == shPid {
						rootID = s.SpanID
					}
				}
			}
			if rootID == "" {
				continue
			}
			children := map[string]int64{}
			for _, s := range trace.Spans {
				if s.SpanID == rootID {
					for _, tag := range s.Tags {
						switch tag.Key {
						case "otel.status_code":
							status = fmt.Sprint(tag.Value)
						case "process.exit.code":
							exitCode = fmt.Sprint(tag.Value)
						}
					}
					continue
				}
				for _, ref := range s.References {
					if ref.RefType == "CHILD_OF" && ref.SpanID == rootID {
						children[s.OperationName] = s.Duration
					}
				}
			}
			if _, ok := children["true"]; !ok || children["sleep"] == 0 {
				continue // the children's spans may still be on their way
			}
			if status != "ERROR" || exitCode != "3" {
				t.Errorf("sh span: status %q exit code %q, want ERROR and 3", status, exitCode)
			}
			if children["sleep"] < 200_000 {
				t.Errorf("sleep 0.2 lasted %d us", children["sleep"])
			}
			return true
		}
		return false
	})
}
