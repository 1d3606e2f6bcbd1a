//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// victoriaLogsBin is bin/victoria-logs (built by `make victorialogs`), or
// $VICTORIALOGS_BIN.
func victoriaLogsBin(t *testing.T) string {
	return builtTool(t, "VICTORIALOGS_BIN", "victoria-logs", "victorialogs")
}

// victoriaLogs is one VictoriaLogs server on loopback.
type victoriaLogs struct {
	base string // http://127.0.0.1:PORT
}

// startVictoriaLogs runs VictoriaLogs on a loopback port with its storage
// in the test's temporary directory, waits until /health answers, and
// stops it when the test ends.
func startVictoriaLogs(t *testing.T) *victoriaLogs {
	t.Helper()
	bin := victoriaLogsBin(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.Port(t))
	cmd := exec.Command(bin, "-httpListenAddr="+addr, "-storageDataPath="+t.TempDir(), "-loggerLevel=WARN")
	output := new(testenv.SyncBuffer)
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("VictoriaLogs output:\n%s", output)
		}
	})
	vl := &victoriaLogs{base: "http://" + addr}
	deadline := time.Now().Add(testenv.Timeout(30 * time.Second))
	for {
		if resp, err := http.Get(vl.base + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return vl
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("VictoriaLogs exited before it answered /health (%v):\n%s", err, output)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("VictoriaLogs did not answer %s/health within the deadline:\n%s", vl.base, output)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// otlpEndpoint is what an otlp_http exporter's logs_endpoint takes.
func (vl *victoriaLogs) otlpEndpoint() string { return vl.base + "/insert/opentelemetry/v1/logs" }

// query runs a LogsQL query over [start, end] through the HTTP query API,
// after making everything ingested so far searchable, and returns the
// matching log entries, each a map of field names to values (VictoriaLogs
// keeps every value as a string).
func (vl *victoriaLogs) query(t *testing.T, query string, start, end time.Time) []map[string]string {
	t.Helper()
	// Ingested rows become searchable within about a second; force_flush
	// makes them so at once.
	if resp, err := http.Get(vl.base + "/internal/force_flush"); err != nil {
		t.Fatalf("VictoriaLogs force_flush: %v", err)
	} else {
		resp.Body.Close()
	}
	form := url.Values{
		"query": {query},
		"start": {start.UTC().Format(time.RFC3339Nano)},
		"end":   {end.UTC().Format(time.RFC3339Nano)},
	}
	resp, err := http.PostForm(vl.base+"/select/logsql/query", form)
	if err != nil {
		t.Fatalf("VictoriaLogs query %q: %v", query, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("VictoriaLogs refused the query %q: %s: %s", query, resp.Status, body)
	}
	var rows []map[string]string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		row := map[string]string{}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("VictoriaLogs answered %q to %q: %v", sc.Text(), query, err)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading VictoriaLogs's answer to %q: %v", query, err)
	}
	return rows
}

// vlSourceConfig is the collector under test: execsnoop (its settings as
// YAML lines under it) -> otlp_http to VictoriaLogs, without a sending
// queue, so that a batch has been ingested when the next one is sent.
func vlSourceConfig(endpoint, receiver string) string {
	var b strings.Builder
	b.WriteString("receivers:\n  execsnoop:\n")
	for line := range strings.Lines(receiver) {
		b.WriteString("    " + line)
	}
	fmt.Fprintf(&b, "\nexporters:\n  otlp_http:\n    logs_endpoint: %s\n    sending_queue:\n      enabled: false\n", endpoint)
	b.WriteString("service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n" +
		"    logs:\n      receivers: [execsnoop]\n      exporters: [otlp_http]\n")
	return b.String()
}
