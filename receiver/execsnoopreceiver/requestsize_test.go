package execsnoopreceiver

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

// The largest record the probe's bounds allow (argv of bpf.MaxArgsSize in
// one-byte arguments that all need quoting, a PATH_MAX filename) is far
// below maxRecordBytes, so no real record is cut today.
func TestLargestRecordFitsRequest(t *testing.T) {
	ev := benchExec
	ev.Filename = "/" + strings.Repeat("x", 4095)
	ev.Args = make([]string, bpf.MaxArgsSize/2)
	for i := range ev.Args {
		ev.Args[i] = "'"
	}
	batch := newLogBatch(&procattr.Mapper{}, nil, "test")
	batch.add(&ev, time.Now(), spanLink{})
	size := logSizer.LogsSize(batch.logs)
	if size > maxRecordBytes {
		t.Fatalf("the largest record is %d bytes, more than maxRecordBytes %d", size, maxRecordBytes)
	}
	if _, cut := batch.logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get(procattr.ArgsTruncated); cut {
		t.Error("a record within the probe's bounds was cut")
	}
	t.Logf("largest record: %d bytes", size)
}

// A record larger than maxRecordBytes is cut and marked, and batches are
// handed on before they pass maxRequestBytes.
func TestBatchesAreBoundedByBytes(t *testing.T) {
	huge := benchExec
	huge.Args = []string{"/usr/bin/cc", strings.Repeat("a", 1<<20)}
	batch := newLogBatch(&procattr.Mapper{}, nil, "test")
	batch.add(&huge, time.Now(), spanLink{})
	lr := batch.logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if size := logSizer.LogRecordSize(lr); size > maxRecordBytes {
		t.Errorf("a 1 MiB argv record is %d bytes after the cut", size)
	}
	if v, ok := lr.Attributes().Get(procattr.ArgsTruncated); !ok || !v.Bool() {
		t.Error("the cut record is not marked execsnoop.args.truncated")
	}
	batch.take()

	long := benchExec
	long.Args = []string{"/usr/bin/cc", strings.Repeat("b", 30000)}
	for batches := 0; batches < 3; {
		batch.add(&long, time.Now(), spanLink{})
		if batch.full(defaultBatchSize) {
			count := batch.count
			logs, _ := batch.take()
			if size := logSizer.LogsSize(logs); size > maxRequestBytes || size < batchFullBytes {
				t.Fatalf("a batch of %d records is %d bytes, want %d to %d", count, size, batchFullBytes, maxRequestBytes)
			}
			batches++
		}
	}
}

// The shipped configs' OTLP exporters cut requests at maxRequestBytes,
// and the chart's request bounds are the same in MiB.
func TestShippedConfigsBoundRequests(t *testing.T) {
	for f, raw := range shippedOTLPConfigs(t) {
		s := string(raw)
		if !strings.Contains(s, "sizer: bytes") || !strings.Contains(s, fmt.Sprintf("max_size: %d\n", maxRequestBytes)) {
			t.Errorf("%s: its OTLP exporter does not batch by bytes up to %d", f, maxRequestBytes)
		}
		if strings.Contains(s, "  batch:\n    timeout") {
			t.Errorf("%s: uses the batch processor, whose batches have no byte bound", f)
		}
	}
	raw, err := os.ReadFile("../../deploy/helm/otelcol-execsnoop/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), fmt.Sprintf("  maxRequestMiB: %d\n", maxRequestBytes>>20)); n != 2 {
		t.Errorf("values.yaml: %d of otlp.maxRequestMiB and gateway.maxRequestMiB are %d", n, maxRequestBytes>>20)
	}
}

// Every shipped config's OTLP exporter and the chart's agents compress as
// config/otlp.yaml does: the choice (make bench's stage table) is made
// there once.
func TestShippedConfigsCompressAlike(t *testing.T) {
	compression := regexp.MustCompile(`(?m)^    compression: (\S+)$`)
	raw, err := os.ReadFile("../../config/otlp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := compression.FindSubmatch(raw)
	if m == nil {
		t.Fatal("config/otlp.yaml: its otlp_grpc exporter sets no compression")
	}
	want := string(m[1])
	for f, raw := range shippedOTLPConfigs(t) {
		if got := compression.FindAllSubmatch(raw, -1); len(got) != 1 || string(got[0][1]) != want {
			t.Errorf("%s: its otlp_grpc exporter should set compression: %s, as config/otlp.yaml does", f, want)
		}
	}
	values, err := os.ReadFile("../../deploy/helm/otelcol-execsnoop/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(values), "\n  compression: "+want+"\n") {
		t.Errorf("values.yaml: otlp.compression should be %s, as config/otlp.yaml's", want)
	}
}

// shippedOTLPConfigs are the shipped configs with an OTLP/gRPC exporter
// (config/ and the packages'), by file name.
func shippedOTLPConfigs(t *testing.T) map[string][]byte {
	t.Helper()
	files, _ := filepath.Glob("../../config/*.yaml")
	files = append(files, "../../deploy/packages/config.yaml")
	configs := map[string][]byte{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), "otlp_grpc:") {
			configs[f] = raw
		}
	}
	if len(configs) < 5 {
		t.Fatalf("found %d shipped configs with an otlp_grpc exporter, want config/{otlp,durable,kubernetes,traces}.yaml and the packages'", len(configs))
	}
	return configs
}
