package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"container/list"
	"math/rand/v2"
	"path"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/tracectx"
)

// spanTracker turns fork, exec and exit events into one span per process:
// it starts at the fork (or the first exec seen), ends at the exit, and is
// a child of its parent process's span when that is tracked. Processes
// whose parent is not tracked start a trace only if they match a root
// pattern.
type spanTracker struct {
	mapper  *procattr.Mapper
	ids     *identities      // nil: hashing is off
	roots   []*regexp.Regexp // nil: every untracked process is a root
	maxOpen int
	rng     *rand.Rand

	open  map[uint32]*openSpan // by pid
	order *list.List           // open spans, oldest first, for eviction
	// forks holds untracked processes between fork and exec, when it is
	// decided whether they start a trace.
	forks map[uint32]time.Time

	dropped int64 // spans evicted or forks forgotten, not yet reported
	// invalidContext counts execs whose TRACEPARENT was not valid, and
	// envUnreadable those whose environment was partly unreadable; not
	// yet reported.
	invalidContext, envUnreadable int64
}

type openSpan struct {
	span    ptrace.Span
	element *list.Element
	// identity is that of the file the process's last exec ran.
	identity *exehash.Result
	// traceparent is the TRACEPARENT the process carries: from its
	// environment at exec, else inherited from its parent at fork.
	traceparent string
}

// spanDone takes an ended span and the identity of the file its process
// ran (nil if none).
type spanDone func(ptrace.Span, *exehash.Result)

func newSpanTracker(mapper *procattr.Mapper, ids *identities, cfg *TracesConfig) *spanTracker {
	t := &spanTracker{
		mapper:  mapper,
		ids:     ids,
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

// handle updates the table with one event; ended spans go to done. It
// returns the ids of the event's process's span, when it has one, for the
// event's log record.
func (t *spanTracker) handle(ev *bpf.Event, done spanDone) (pcommon.TraceID, pcommon.SpanID, bool) {
	switch ev.Kind {
	case bpf.KindFork:
		if parent, ok := t.open[ev.PPID]; ok {
			s := t.start(ev.PID, parent.span.TraceID(), parent.span.SpanID(), ev.StartTime, procattr.SpanName(ev), done)
			s.traceparent = parent.traceparent
			s.span.TraceState().FromRaw(parent.span.TraceState().AsRaw())
			return s.span.TraceID(), s.span.SpanID(), true
		}
		if len(t.forks) >= t.maxOpen {
			t.dropped += int64(len(t.forks))
			clear(t.forks)
		}
		t.forks[ev.PID] = ev.StartTime
	case bpf.KindExec:
		if s := t.exec(ev, done); s != nil {
			return s.span.TraceID(), s.span.SpanID(), true
		}
	case bpf.KindExit:
		delete(t.forks, ev.PID)
		s, ok := t.open[ev.PID]
		if !ok {
			break
		}
		t.remove(ev.PID, s)
		span := s.span
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(ev.Time))
		if failed, message := t.mapper.SpanExit(ev, pmapSink(span.Attributes())); failed {
			span.Status().SetCode(ptrace.StatusCodeError)
			span.Status().SetMessage(message)
		}
		traceID, spanID := span.TraceID(), span.SpanID()
		done(span, s.identity)
		return traceID, spanID, true
	}
	return pcommon.TraceID{}, pcommon.SpanID{}, false
}

// remoteParent is the valid trace context an exec brought in its
// environment, if any; an invalid one is counted and ignored.
func (t *spanTracker) remoteParent(ev *bpf.Event) (tracectx.Parent, bool) {
	if ev.EnvUnreadable {
		t.envUnreadable++
	}
	if ev.TraceParent == "" {
		return tracectx.Parent{}, false
	}
	p, err := tracectx.ParseTraceparent(ev.TraceParent)
	if err != nil {
		t.invalidContext++
		return tracectx.Parent{}, false
	}
	return p, true
}

// joinRemote makes span a child of the remote parent, in its trace.
func joinRemote(s *openSpan, p tracectx.Parent, ev *bpf.Event) {
	s.span.SetTraceID(p.TraceID)
	s.span.SetParentSpanID(p.SpanID)
	s.span.SetFlags(uint32(p.Flags))
	s.span.TraceState().FromRaw(tracectx.CleanTracestate(ev.TraceState, ev.TraceStateTruncated))
	s.traceparent = ev.TraceParent
}

// exec places the process's span: a child of the remote span its
// TRACEPARENT names when that differs from what its parent process carries
// (whatever traces.roots says), else a child of its parent process's span,
// else a new trace when it is a root. It returns the process's span.
func (t *spanTracker) exec(ev *bpf.Event, done spanDone) *openSpan {
	s, ok := t.open[ev.PID]
	if ev.Failed() {
		if ok {
			t.mapper.Attributes(ev, pmapSink(t.addEvent(s.span, procattr.SpanEventExecFailed, ev).Attributes()))
		}
		return s
	}
	remote, hasRemote := t.remoteParent(ev)
	if !ok {
		start, forked := t.forks[ev.PID]
		delete(t.forks, ev.PID)
		if !forked {
			start = ev.Time
		}
		parent, tracked := t.open[ev.PPID]
		switch {
		case hasRemote && (!tracked || parent.traceparent != ev.TraceParent):
			s = t.start(ev.PID, remote.TraceID, remote.SpanID, start, "", done)
			joinRemote(s, remote, ev)
		case tracked:
			s = t.start(ev.PID, parent.span.TraceID(), parent.span.SpanID(), start, "", done)
			s.traceparent = parent.traceparent
			s.span.TraceState().FromRaw(parent.span.TraceState().AsRaw())
		case t.isRoot(ev):
			s = t.start(ev.PID, t.traceID(), pcommon.NewSpanIDEmpty(), start, "", done)
		default:
			return nil
		}
	} else if hasRemote && ev.TraceParent != s.traceparent {
		// A forked child (or a process exec'ing again) handed a
		// different trace context, e.g. the next CI step or otel-cli
		// exec: it moves to that trace.
		joinRemote(s, remote, ev)
	}
	// A process that execs again keeps its span: the span takes the newest
	// image's name and attributes, and each exec is an event.
	s.span.SetName(procattr.SpanName(ev))
	s.identity = t.ids.lookup(ev)
	t.mapper.Attributes(ev, pmapSink(s.span.Attributes()))
	t.mapper.Attributes(ev, pmapSink(t.addEvent(s.span, procattr.SpanEventExec, ev).Attributes()))
	return s
}

func (t *spanTracker) addEvent(span ptrace.Span, name string, ev *bpf.Event) ptrace.SpanEvent {
	e := span.Events().AppendEmpty()
	e.SetName(name)
	e.SetTimestamp(pcommon.NewTimestampFromTime(ev.Time))
	return e
}

// start opens a span, evicting the oldest open one at the cap.
func (t *spanTracker) start(pid uint32, trace pcommon.TraceID, parent pcommon.SpanID, at time.Time, name string, done spanDone) *openSpan {
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
	procattr.SpanStart(pid, pmapSink(span.Attributes()))
	s := &openSpan{span: span, element: t.order.PushBack(pid)}
	t.open[pid] = s
	return s
}

func (t *spanTracker) remove(pid uint32, s *openSpan) {
	t.order.Remove(s.element)
	delete(t.open, pid)
}

// endAll ends every open span at shutdown, flagged as unfinished.
func (t *spanTracker) endAll(now time.Time, done spanDone) {
	for pid, s := range t.open {
		t.remove(pid, s)
		s.span.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		procattr.MarkUnfinished(pmapSink(s.span.Attributes()))
		done(s.span, s.identity)
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
	traces  ptrace.Traces
	ids     *identities
	pending []fill
}

func newSpanBatch(ids *identities, scopeVersion string) *spanBatch {
	b := &spanBatch{ids: ids, traces: ptrace.NewTraces()}
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

// add moves an ended span into the batch, with the identity of the file
// its process ran (nil: none); container is that of the process's last
// event.
func (b *spanBatch) add(span ptrace.Span, identity *exehash.Result, container procattr.Container, now time.Time) {
	size := withTag(spanSizer.SpanSize(span))
	if size > maxRecordBytes {
		cutSpan(span)
		size = withTag(spanSizer.SpanSize(span))
	}
	moved := b.slot(container, now).AppendEmpty()
	span.MoveTo(moved)
	b.bytes += size + b.ids.attach(identity, moved.Attributes(), now, &b.pending)
}

func (b *spanBatch) take() (ptrace.Traces, []fill) {
	traces, pending := b.traces, b.pending
	b.traces, b.pending = ptrace.NewTraces(), nil
	b.reset()
	return traces, pending
}
