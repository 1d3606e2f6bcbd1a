package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

// Byte bounds of what the receiver hands on. An OTLP/gRPC receiver accepts
// messages of up to 4 MiB by default (max_recv_msg_size_mib: 4, counted
// after decompression; OTLP/HTTP's max_request_body_size is 20 MiB), and the
// shipped configs' exporters cut their requests at the same 4 MiB
// (sending_queue.batch.max_size, pinned by TestShippedConfigsBoundRequests):
// a batch of the receiver fits in one request even where nothing batches
// after it.
const (
	// maxRequestBytes is the OTLP protobuf size a batch never exceeds.
	maxRequestBytes = 4 << 20
	// maxRecordBytes bounds one record (a log record or a span): a larger
	// one is cut (cutRecord). The largest the probe's bounds allow (argv
	// of 32 KiB, twice: attribute and body) is far below it
	// (TestLargestRecordFitsRequest).
	maxRecordBytes = 256 << 10
	// resourceBytes bounds a batch's resource and scope for one container
	// (container.id, k8s.pod.uid, scope name and version).
	resourceBytes = 1 << 10
	// batchFullBytes: a batch is sent once it holds this much, so that
	// the next record cannot take it past maxRequestBytes.
	batchFullBytes = maxRequestBytes - maxRecordBytes - resourceBytes
)

// Sizes as the exporters' bytes sizer counts them: the record and its
// field tag and length.
var (
	logSizer  plog.ProtoMarshaler
	spanSizer ptrace.ProtoMarshaler
)

func withTag(n int) int {
	varint := 1
	for v := n >> 7; v > 0; v >>= 7 {
		varint++
	}
	return 1 + varint + n
}

// cutRecord shortens the body and argv of a log record larger than
// maxRecordBytes so that it fits, and marks it with execsnoop.args.truncated:
// it is sent cut rather than make its request fail.
func cutRecord(lr plog.LogRecord) {
	budget := maxRecordBytes / 4
	if body := lr.Body().Str(); len(body) > budget {
		lr.Body().SetStr(strings.ToValidUTF8(body[:budget], ""))
	}
	if args, ok := lr.Attributes().Get(procattr.ProcessCommandArgs); ok {
		cutArgs(args.Slice().AsRaw(), budget, lr.Attributes().PutEmptySlice(procattr.ProcessCommandArgs))
	}
	lr.Attributes().PutBool(procattr.ArgsTruncated, true)
}

// cutSpan does the same for a span's attributes.
func cutSpan(span ptrace.Span) {
	if args, ok := span.Attributes().Get(procattr.ProcessCommandArgs); ok {
		cutArgs(args.Slice().AsRaw(), maxRecordBytes/4, span.Attributes().PutEmptySlice(procattr.ProcessCommandArgs))
	}
	span.Attributes().PutBool(procattr.ArgsTruncated, true)
}

// cutArgs keeps the leading arguments that fit in budget bytes.
func cutArgs(args []any, budget int, into pcommon.Slice) {
	for _, a := range args {
		s, _ := a.(string)
		if len(s)+8 > budget {
			if budget > 8 {
				into.AppendEmpty().SetStr(strings.ToValidUTF8(s[:budget-8], ""))
			}
			return
		}
		budget -= len(s) + 8
		into.AppendEmpty().SetStr(s)
	}
}

// tooLarge reports whether the next consumer refused a request for its
// size: a gRPC receiver's limit (ResourceExhausted "... larger than max"),
// an HTTP receiver's 413, or the exporter's batcher dropping a record
// larger than its max_size.
func tooLarge(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "larger than max") || strings.Contains(msg, "exceeds the max size limit") ||
		strings.Contains(msg, "413") && strings.Contains(msg, "Request Entity Too Large")
}
