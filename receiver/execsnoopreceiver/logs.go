package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

// logBatch collects log records, one ResourceLogs per container.
type logBatch struct {
	containerBatch[plog.LogRecordSlice]
	mapper *procattr.Mapper
	logs   plog.Logs
	ids    *identities // nil: hashing is off
	// pending are the batch's records whose identity is still to come.
	pending []fill
	// attrsHint is, per event kind and failed or not, how many attributes
	// the last such record had: the next one's map is made that large,
	// not procattr.MaxAttributes large, since the map is most of the bytes
	// a record allocates and the collector's GC work follows those bytes.
	attrsHint [8]int
}

func newLogBatch(mapper *procattr.Mapper, ids *identities, scopeVersion string) *logBatch {
	b := &logBatch{mapper: mapper, ids: ids, logs: plog.NewLogs()}
	b.containerBatch = containerBatch[plog.LogRecordSlice]{
		scopeVersion: scopeVersion,
		byContainer:  make(map[procattr.Container]plog.LogRecordSlice),
		appendResource: func() (pcommon.Resource, pcommon.InstrumentationScope, plog.LogRecordSlice) {
			rl := b.logs.ResourceLogs().AppendEmpty()
			sl := rl.ScopeLogs().AppendEmpty()
			return rl.Resource(), sl.Scope(), sl.LogRecords()
		},
	}
	return b
}

// spanLink is the span of a log record's process, when spans are built.
type spanLink struct {
	traceID pcommon.TraceID
	spanID  pcommon.SpanID
	ok      bool
}

func (b *logBatch) add(ev *bpf.Event, observed time.Time, link spanLink) {
	rec := b.mapper.Log(ev)
	lr := b.slot(rec.Resource, observed).AppendEmpty()
	hint := &b.attrsHint[attrsHintIndex(ev)]
	toLogRecord(ev, rec, observed, b.mapper, lr, *hint)
	*hint = lr.Attributes().Len() + procattr.IdentityAttributes
	if link.ok {
		lr.SetTraceID(link.traceID)
		lr.SetSpanID(link.spanID)
	}
	size := withTag(logSizer.LogRecordSize(lr))
	if size > maxRecordBytes {
		cutRecord(lr)
		size = withTag(logSizer.LogRecordSize(lr))
	}
	b.bytes += size + b.ids.attach(b.ids.lookup(ev), lr.Attributes(), observed, &b.pending)
}

// take hands over the collected logs, with the fills they still need, and
// starts a new batch.
func (b *logBatch) take() (plog.Logs, []fill) {
	logs, pending := b.logs, b.pending
	b.logs, b.pending = plog.NewLogs(), nil
	b.reset()
	return logs, pending
}

// attrsHintIndex groups events whose records have about as many
// attributes: by kind, and a failed exec apart from a successful one.
func attrsHintIndex(ev *bpf.Event) int {
	i := int(ev.Kind) & 3
	if ev.Failed() {
		i += 4
	}
	return i
}

// toLogRecord puts procattr's record of one event into lr, whose attribute
// map is made for capacity attributes (0: procattr.MaxAttributes and the
// identity's); it grows if they are more.
func toLogRecord(ev *bpf.Event, rec procattr.Log, observed time.Time, mapper *procattr.Mapper, lr plog.LogRecord, capacity int) {
	lr.SetEventName(rec.EventName)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(rec.Time))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	lr.SetSeverityNumber(plog.SeverityNumber(rec.Severity.Number))
	lr.SetSeverityText(rec.Severity.Text)
	lr.Body().SetStr(rec.Body)
	attrs := lr.Attributes()
	if capacity == 0 {
		capacity = procattr.MaxAttributes + procattr.IdentityAttributes
	}
	attrs.EnsureCapacity(capacity) // one allocation instead of growing
	mapper.Attributes(ev, pmapSink(attrs))
}

// pmapSink puts attributes into a pdata map.
type pmapSink pcommon.Map

func (s pmapSink) Str(k, v string)            { pcommon.Map(s).PutStr(k, v) }
func (s pmapSink) Int(k string, v int64)      { pcommon.Map(s).PutInt(k, v) }
func (s pmapSink) Double(k string, v float64) { pcommon.Map(s).PutDouble(k, v) }
func (s pmapSink) Bool(k string, v bool)      { pcommon.Map(s).PutBool(k, v) }
func (s pmapSink) Strs(k string, vs []string) {
	slice := pcommon.Map(s).PutEmptySlice(k)
	slice.EnsureCapacity(len(vs))
	for _, v := range vs {
		slice.AppendEmpty().SetStr(v)
	}
}

func (s pmapSink) Ints(k string, vs []int64) {
	slice := pcommon.Map(s).PutEmptySlice(k)
	slice.EnsureCapacity(len(vs))
	for _, v := range vs {
		slice.AppendEmpty().SetInt(v)
	}
}
