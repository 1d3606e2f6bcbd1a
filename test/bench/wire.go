//go:build linux

package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/plog"
)

// What a codec makes of the requests a sink received: the sink's file
// exporter writes each request it received as one JSON line, which is
// marshalled again to OTLP protobuf - what went on the wire before
// compression - and compressed as the collector's gRPC codecs do
// (configgrpc: grpc's gzip at the default level, klauspost's zstd at its
// default level with a 512 KiB window, golang/snappy's framed writer).

// codecs are the otlp_grpc exporter's compressions, "none" included.
var codecs = []string{"none", "gzip", "zstd", "snappy"}

// wireBytes is a row's requests as sent: bytes per record with the row's
// codec; records 0: not measured (no sink).
type wireBytes struct {
	records int
	bytes   int64
}

func (w wireBytes) cell() string {
	if w.records == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(w.bytes)/float64(w.records))
}

// sinkRequests reads the sink's requests as OTLP protobuf, one per line.
func sinkRequests(path string) (requests [][]byte, records int) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	var ju plog.JSONUnmarshaler
	var pm plog.ProtoMarshaler
	for sc.Scan() {
		logs, err := ju.UnmarshalLogs(sc.Bytes())
		if err != nil {
			continue
		}
		raw, err := pm.MarshalLogs(logs)
		check(err)
		requests = append(requests, raw)
		records += logs.LogRecordCount()
	}
	return requests, records
}

// measureWire is the sink's requests' size with codec.
func measureWire(path, codec string) wireBytes {
	requests, records := sinkRequests(path)
	w := wireBytes{records: records}
	for _, req := range requests {
		w.bytes += int64(len(compress(codec, req)))
	}
	return w
}

func compress(codec string, data []byte) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch codec {
	case "none":
		return data
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "zstd":
		enc, err := zstd.NewWriter(&buf, zstd.WithWindowSize(512*1024))
		check(err)
		w = enc
	case "snappy":
		w = snappy.NewBufferedWriter(&buf)
	default:
		fail("unknown codec %q", codec)
	}
	_, err := w.Write(data)
	check(err)
	check(w.Close())
	return buf.Bytes()
}

// codecRow is one codec over the same requests.
type codecRow struct {
	codec            string
	bytesPerRecord   float64
	ratio            float64 // compressed over uncompressed
	compressUsPerRec float64 // this process's CPU-bound time to compress, per record
}

// codecTable compresses the same requests with every codec.
func codecTable(path string) ([]codecRow, int) {
	requests, records := sinkRequests(path)
	if records == 0 {
		return nil, 0
	}
	var raw int64
	for _, r := range requests {
		raw += int64(len(r))
	}
	var rows []codecRow
	for _, c := range codecs {
		start := time.Now()
		var n int64
		for _, r := range requests {
			n += int64(len(compress(c, r)))
		}
		elapsed := time.Since(start)
		rows = append(rows, codecRow{codec: c, bytesPerRecord: float64(n) / float64(records), ratio: float64(n) / float64(raw),
			compressUsPerRec: float64(elapsed.Microseconds()) / float64(records)})
	}
	return rows, records
}

func renderCodecs(rows []codecRow, records int) string {
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nThe codecs on the same requests: the %d records a sink received in the last stage run, each request marshalled "+
		"again and compressed in this process (wall time of one goroutine, so load inflates it; compare rows, not runs).\n\n", records)
	b.WriteString("| codec | bytes / record | of uncompressed | compress us / record |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %.0f | %.0f%% | %.1f |\n", r.codec, r.bytesPerRecord, 100*r.ratio, r.compressUsPerRec)
	}
	return b.String()
}
