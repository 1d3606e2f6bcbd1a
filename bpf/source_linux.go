//go:build linux && (amd64 || arm64)

package bpf

import (
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/ringbuf"
)

// recordSource hides the two transports behind one reading loop.
type recordSource interface {
	// next returns the next raw record, or the number of records the
	// kernel dropped (perf), or os.ErrDeadlineExceeded once drained.
	next() (raw []byte, lost uint64, err error)
	// setDeadline bounds the wait of next; the zero time waits for data.
	setDeadline(time.Time)
	// wakesOnData says whether the kernel wakes a reader waiting on an
	// empty buffer for its first record (the ring buffer's adaptive
	// wakeup); the perf buffer wakes only at its watermark.
	wakesOnData() bool
	// flush makes next return what is buffered, then an error that
	// wraps ErrFlushed.
	flush() error
	close() error
}

type ringbufSource struct {
	reader *ringbuf.Reader
	record ringbuf.Record
}

func newRingbufSource(m *ebpf.Map) (*ringbufSource, error) {
	r, err := ringbuf.NewReader(m)
	if err != nil {
		return nil, err
	}
	return &ringbufSource{reader: r}, nil
}

func (s *ringbufSource) next() ([]byte, uint64, error) {
	err := s.reader.ReadInto(&s.record)
	return s.record.RawSample, 0, err
}

func (s *ringbufSource) setDeadline(t time.Time) { s.reader.SetDeadline(t) }
func (s *ringbufSource) wakesOnData() bool       { return true }
func (s *ringbufSource) flush() error            { return s.reader.Flush() }
func (s *ringbufSource) close() error            { return s.reader.Close() }

type perfSource struct {
	reader *perf.Reader
	record perf.Record
}

func newPerfSource(m *ebpf.Map, perCPUBuffer int) (*perfSource, error) {
	perCPUBuffer = pageRoundPow2(perCPUBuffer)
	// The reader drains on its own schedule; a high watermark spares the
	// kernel wakeups nobody waits for.
	r, err := perf.NewReaderWithOptions(m, perCPUBuffer, perf.ReaderOptions{Watermark: perCPUBuffer / 2})
	if err != nil {
		return nil, err
	}
	return &perfSource{reader: r}, nil
}

func (s *perfSource) next() ([]byte, uint64, error) {
	err := s.reader.ReadInto(&s.record)
	return s.record.RawSample, s.record.LostSamples, err
}

func (s *perfSource) setDeadline(t time.Time) { s.reader.SetDeadline(t) }
func (s *perfSource) wakesOnData() bool       { return false }
func (s *perfSource) flush() error            { return s.reader.Flush() }
func (s *perfSource) close() error            { return s.reader.Close() }
