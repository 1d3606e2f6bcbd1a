package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"container/list"
	"math/rand/v2"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

// Span attributes and event names of process spans.
const (
	spanUnfinished   = "execsnoop.span.unfinished" // the receiver stopped before the process exited
	spanEventExec    = "exec"
	spanEventExecErr = "exec failed"
)

// spanTracker turns fork, exec and exit events into one span per process:
// it starts at the fork (or the first exec seen), ends at the exit, and is
// a child of its parent process's span when that is tracked. Processes
// whose parent is not tracked start a trace only if they match a root
// pattern.
type spanTracker struct {
	mapper  *procattr.Mapper
	roots   []*regexp.Regexp // nil: every untracked process is a root
	maxOpen int
	rng     *rand.Rand

	open  map[uint32]*openSpan // by pid
	order *list.List           // open spans, oldest first, for eviction
	// forks holds untracked processes between fork and exec, when it is
	// decided whether they start a trace.
	forks map[uint32]time.Time

	dropped int64 // spans evicted or forks forgotten, not yet reported
}

type openSpan struct {
	span    ptrace.Span
	element *list.Element
}

func newSpanTracker(mapper *procattr.Mapper, cfg *TracesConfig) *spanTracker {
	t := &spanTracker{
		mapper:  mapper,
		maxOpen: cfg.MaxOpenSpans,
		rng:     rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		open:    make(map[uint32]*openSpan),
		order:   list.New(),
		forks:   make(map[uint32]time.Time),
	}
	for _, p := range cfg.Roots {
		if p == "*" {
			t.roots = nil
			break
		}
		t.roots = append(t.roots, rootPattern(p))
	}
	return t
}

// rootPattern compiles a glob where * matches any text, slashes included.
func rootPattern(glob string) *regexp.Regexp {
	quoted := regexp.QuoteMeta(glob)
	quoted = strings.ReplaceAll(quoted, `\*`, `.*`)
	quoted = strings.ReplaceAll(quoted, `\?`, `.`)
	return regexp.MustCompile(`^` + quoted + `$`)
}

// isRoot matches the patterns against the executable's name and against
// the command line with that name first ("bash ci.sh").
func (t *spanTracker) isRoot(ev *bpf.Event) bool {
	if t.roots == nil {
		return true
	}
	name := path.Base(ev.Filename)
	line := name
	if len(ev.Args) > 1 {
		line += " " + strings.Join(ev.Args[1:], " ")
	}
	for _, re := range t.roots {
		if re.MatchString(name) || re.MatchString(line) {
			return true
		}
	}
	return false
}

// handle updates the table with one event; ended spans go to done.
func (t *spanTracker) handle(ev *bpf.Event, done func(ptrace.Span)) {
	switch ev.Kind {
	case bpf.KindFork:
		if parent, ok := t.open[ev.PPID]; ok {
			t.start(ev.PID, parent.span.TraceID(), parent.span.SpanID(), ev.StartTime, ev.Comm, done)
			return
		}
		if len(t.forks) >= t.maxOpen {
			t.dropped += int64(len(t.forks))
			clear(t.forks)
		}
		t.forks[ev.PID] = ev.StartTime
	case bpf.KindExec:
		t.exec(ev, done)
	case bpf.KindExit:
		delete(t.forks, ev.PID)
		s, ok := t.open[ev.PID]
		if !ok {
			return
		}
		t.remove(ev.PID, s)
		span := s.span
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(ev.Time))
		t.mapper.Attributes(ev, pmapSink(span.Attributes()))
		if code := ev.ShellExitCode(); code != 0 {
			span.Status().SetCode(ptrace.StatusCodeError)
			span.Status().SetMessage(t.mapper.Body(ev))
			span.Attributes().PutStr(procattr.ErrorType, strconv.Itoa(code))
		}
		done(span)
	}
}

func (t *spanTracker) exec(ev *bpf.Event, done func(ptrace.Span)) {
	s, ok := t.open[ev.PID]
	if ev.Failed() {
		if ok {
			t.mapper.Attributes(ev, pmapSink(t.addEvent(s.span, spanEventExecErr, ev).Attributes()))
		}
		return
	}
	if !ok {
		start, forked := t.forks[ev.PID]
		delete(t.forks, ev.PID)
		if !forked {
			start = ev.Time
		}
		if parent, tracked := t.open[ev.PPID]; tracked {
			s = t.start(ev.PID, parent.span.TraceID(), parent.span.SpanID(), start, "", done)
		} else if t.isRoot(ev) {
			s = t.start(ev.PID, t.traceID(), pcommon.NewSpanIDEmpty(), start, "", done)
		} else {
			return
		}
	}
	// A process that execs again keeps its span: the span takes the newest
	// image's name and attributes, and each exec is an event.
	s.span.SetName(path.Base(ev.Filename))
	t.mapper.Attributes(ev, pmapSink(s.span.Attributes()))
	t.mapper.Attributes(ev, pmapSink(t.addEvent(s.span, spanEventExec, ev).Attributes()))
}

func (t *spanTracker) addEvent(span ptrace.Span, name string, ev *bpf.Event) ptrace.SpanEvent {
	e := span.Events().AppendEmpty()
	e.SetName(name)
	e.SetTimestamp(pcommon.NewTimestampFromTime(ev.Time))
	return e
}

// start opens a span, evicting the oldest open one at the cap.
func (t *spanTracker) start(pid uint32, trace pcommon.TraceID, parent pcommon.SpanID, at time.Time, name string, done func(ptrace.Span)) *openSpan {
	if len(t.open) >= t.maxOpen {
		oldest := t.order.Front().Value.(uint32)
		t.remove(oldest, t.open[oldest])
		t.dropped++
	}
	span := ptrace.NewSpan()
	span.SetTraceID(trace)
	span.SetSpanID(t.spanID())
	span.SetParentSpanID(parent)
	span.SetKind(ptrace.SpanKindInternal)
	span.SetName(name)
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	span.Attributes().PutInt(procattr.ProcessPID, int64(pid))
	s := &openSpan{span: span, element: t.order.PushBack(pid)}
	t.open[pid] = s
	return s
}

func (t *spanTracker) remove(pid uint32, s *openSpan) {
	t.order.Remove(s.element)
	delete(t.open, pid)
}

// endAll ends every open span at shutdown, flagged as unfinished.
func (t *spanTracker) endAll(now time.Time, done func(ptrace.Span)) {
	for pid, s := range t.open {
		t.remove(pid, s)
		s.span.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		s.span.Attributes().PutBool(spanUnfinished, true)
		done(s.span)
	}
}

func (t *spanTracker) traceID() pcommon.TraceID {
	var id pcommon.TraceID
	for i := range 2 {
		v := t.rng.Uint64()
		for j := range 8 {
			id[i*8+j] = byte(v >> (8 * j))
		}
	}
	return id
}

func (t *spanTracker) spanID() pcommon.SpanID {
	var id pcommon.SpanID
	v := t.rng.Uint64() | 1 // never the all-zero invalid id
	for j := range 8 {
		id[j] = byte(v >> (8 * j))
	}
	return id
}

// spanBatch collects ended spans, one ResourceSpans per container.
type spanBatch struct {
	containerBatch[ptrace.SpanSlice]
	traces ptrace.Traces
}

func newSpanBatch(scopeVersion string) *spanBatch {
	b := &spanBatch{traces: ptrace.NewTraces()}
	b.containerBatch = containerBatch[ptrace.SpanSlice]{
		scopeVersion: scopeVersion,
		byContainer:  make(map[procattr.Container]ptrace.SpanSlice),
		appendResource: func() (pcommon.Resource, pcommon.InstrumentationScope, ptrace.SpanSlice) {
			rs := b.traces.ResourceSpans().AppendEmpty()
			ss := rs.ScopeSpans().AppendEmpty()
			return rs.Resource(), ss.Scope(), ss.Spans()
		},
	}
	return b
}

// add moves an ended span into the batch; container is that of the
// process's last event.
func (b *spanBatch) add(span ptrace.Span, container procattr.Container, now time.Time) {
	span.MoveTo(b.slot(container, now).AppendEmpty())
}

func (b *spanBatch) take() ptrace.Traces {
	traces := b.traces
	b.traces = ptrace.NewTraces()
	b.reset()
	return traces
}
