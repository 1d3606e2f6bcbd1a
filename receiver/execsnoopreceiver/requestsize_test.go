package execsnoopreceiver

import (
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
	batch := newLogBatch(&procattr.Mapper{}, "test")
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
	batch := newLogBatch(&procattr.Mapper{}, "test")
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
			if size := logSizer.LogsSize(batch.take()); size > maxRequestBytes || size < batchFullBytes {
				t.Fatalf("a batch of %d records is %d bytes, want %d to %d", count, size, batchFullBytes, maxRequestBytes)
			}
			batches++
		}
	}
}
