package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadata"
)

// logBatch collects log records into one ResourceLogs per container, so
// that processors such as k8s_attributes see container.id on the resource.
type logBatch struct {
	mapper       *procattr.Mapper
	scopeVersion string

	logs        plog.Logs
	byContainer map[string]plog.LogRecordSlice
	count       int
	started     time.Time
}

func newLogBatch(mapper *procattr.Mapper, scopeVersion string) *logBatch {
	b := &logBatch{mapper: mapper, scopeVersion: scopeVersion, byContainer: make(map[string]plog.LogRecordSlice)}
	b.reset()
	return b
}

func (b *logBatch) reset() {
	b.logs = plog.NewLogs()
	clear(b.byContainer)
	b.count = 0
}

func (b *logBatch) add(ev *bpf.Event, observed time.Time) {
	if b.count == 0 {
		b.started = observed
	}
	containerID := b.mapper.ContainerID(ev)
	records, ok := b.byContainer[containerID]
	if !ok {
		rl := b.logs.ResourceLogs().AppendEmpty()
		if containerID != "" {
			rl.Resource().Attributes().PutStr(procattr.ContainerID, containerID)
		}
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(metadata.ScopeName)
		sl.Scope().SetVersion(b.scopeVersion)
		records = sl.LogRecords()
		b.byContainer[containerID] = records
	}
	toLogRecord(ev, observed, b.mapper, records.AppendEmpty())
	b.count++
}

// take hands over the collected logs and starts a new batch.
func (b *logBatch) take() plog.Logs {
	logs := b.logs
	b.reset()
	return logs
}

// toLogRecord is the conversion of one event to a log record.
func toLogRecord(ev *bpf.Event, observed time.Time, mapper *procattr.Mapper, lr plog.LogRecord) {
	lr.SetEventName(procattr.EventName(ev))
	lr.SetTimestamp(pcommon.NewTimestampFromTime(ev.Time))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	severity := procattr.SeverityOf(ev)
	lr.SetSeverityNumber(plog.SeverityNumber(severity.Number))
	lr.SetSeverityText(severity.Text)
	lr.Body().SetStr(mapper.Body(ev))
	attrs := lr.Attributes()
	attrs.EnsureCapacity(procattr.MaxAttributes) // one allocation instead of growing
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
