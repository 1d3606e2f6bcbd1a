package main

import (
	"bufio"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

// jsonWriter prints one JSON object per event and line:
//
//	{"time":...,"event":...,"severity":...,"body":...,"resource":{...},"attributes":{...}}
//
// It appends to one reused buffer instead of going through encoding/json's
// reflection: the per-event path allocates nothing of its own.
type jsonWriter struct {
	w      *bufio.Writer
	mapper *procattr.Mapper
	buf    []byte
	first  bool // no attribute written yet in this object
}

func newJSONWriter(w *bufio.Writer, mapper *procattr.Mapper) *jsonWriter {
	return &jsonWriter{w: w, mapper: mapper, buf: make([]byte, 0, 4096)}
}

func (j *jsonWriter) write(ev *bpf.Event, id *exehash.Identity) error {
	l := j.mapper.Log(ev)
	b := j.buf[:0]
	b = append(b, `{"time":"`...)
	b = l.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","event":`...)
	b = appendJSONString(b, l.EventName)
	b = append(b, `,"severity":`...)
	b = appendJSONString(b, l.Severity.Text)
	b = append(b, `,"body":`...)
	b = appendJSONString(b, l.Body)
	j.buf = b
	if l.Resource != (procattr.Container{}) {
		j.buf, j.first = append(j.buf, `,"resource":{`...), true
		l.Resource.Resource(j)
		j.buf = append(j.buf, '}')
	}
	j.buf, j.first = append(j.buf, `,"attributes":{`...), true
	j.mapper.Attributes(ev, j)
	if id != nil {
		procattr.Identity(id, j)
	}
	j.buf = append(j.buf, "}}\n"...)
	_, err := j.w.Write(j.buf)
	return err
}

// The procattr.Sink methods append "key":value pairs.

func (j *jsonWriter) key(k string) {
	if !j.first {
		j.buf = append(j.buf, ',')
	}
	j.first = false
	j.buf = appendJSONString(j.buf, k)
	j.buf = append(j.buf, ':')
}

func (j *jsonWriter) Str(k, v string) {
	j.key(k)
	j.buf = appendJSONString(j.buf, v)
}

func (j *jsonWriter) Int(k string, v int64) {
	j.key(k)
	j.buf = strconv.AppendInt(j.buf, v, 10)
}

func (j *jsonWriter) Double(k string, v float64) {
	j.key(k)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		j.buf = append(j.buf, "null"...)
		return
	}
	j.buf = strconv.AppendFloat(j.buf, v, 'g', -1, 64)
}

func (j *jsonWriter) Bool(k string, v bool) {
	j.key(k)
	j.buf = strconv.AppendBool(j.buf, v)
}

func (j *jsonWriter) Strs(k string, vs []string) {
	j.key(k)
	j.buf = append(j.buf, '[')
	for i, v := range vs {
		if i > 0 {
			j.buf = append(j.buf, ',')
		}
		j.buf = appendJSONString(j.buf, v)
	}
	j.buf = append(j.buf, ']')
}

func (j *jsonWriter) Ints(k string, vs []int64) {
	j.key(k)
	j.buf = append(j.buf, '[')
	for i, v := range vs {
		if i > 0 {
			j.buf = append(j.buf, ',')
		}
		j.buf = strconv.AppendInt(j.buf, v, 10)
	}
	j.buf = append(j.buf, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. procattr hands over valid
// UTF-8; any invalid byte is still written as U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\t':
				b = append(b, '\\', 't')
			case '\r':
				b = append(b, '\\', 'r')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
