package main

import (
	"bufio"
	"encoding/json"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

// jsonRecord is one output line; its maps are reused from event to event.
type jsonRecord struct {
	Time       string            `json:"time"`
	Event      string            `json:"event"`
	Severity   string            `json:"severity"`
	Body       string            `json:"body"`
	Resource   map[string]string `json:"resource,omitempty"`
	Attributes jsonSink          `json:"attributes"`
}

// jsonSink collects procattr attributes with their types: strings, int64,
// float64, bools and string slices (JSON arrays). The event's Args slice is
// encoded before the next Read reuses it, so it is not copied.
type jsonSink map[string]any

func (m jsonSink) Str(k, v string)            { m[k] = v }
func (m jsonSink) Int(k string, v int64)      { m[k] = v }
func (m jsonSink) Double(k string, v float64) { m[k] = v }
func (m jsonSink) Bool(k string, v bool)      { m[k] = v }
func (m jsonSink) Strs(k string, v []string) {
	if v == nil {
		v = []string{} // an array, never null
	}
	m[k] = v
}

// jsonWriter prints one JSON object per event and line.
type jsonWriter struct {
	enc    *json.Encoder
	mapper *procattr.Mapper
	rec    jsonRecord
}

func newJSONWriter(w *bufio.Writer, mapper *procattr.Mapper) *jsonWriter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &jsonWriter{
		enc:    enc,
		mapper: mapper,
		rec:    jsonRecord{Resource: make(map[string]string, 1), Attributes: make(jsonSink, procattr.MaxAttributes)},
	}
}

func (j *jsonWriter) write(ev *bpf.Event) error {
	r := &j.rec
	r.Time = ev.Time.UTC().Format(time.RFC3339Nano)
	r.Event = procattr.EventName(ev)
	r.Severity = procattr.SeverityOf(ev).Text
	r.Body = j.mapper.Body(ev)
	clear(r.Resource)
	if id := j.mapper.ContainerID(ev); id != "" {
		r.Resource[procattr.ContainerID] = id
	}
	clear(r.Attributes)
	j.mapper.Attributes(ev, r.Attributes)
	return j.enc.Encode(r)
}
