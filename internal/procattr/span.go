package procattr

import (
	"path"
	"strconv"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

// Process spans: one per process, from its fork (or first exec) to its
// exit, named after its executable, with each exec as a span event.
const (
	SpanUnfinished      = "execsnoop.span.unfinished" // the receiver stopped before the process exited
	SpanAdopted         = "execsnoop.span.adopted"    // the process was running before the receiver
	SpanEventExec       = "exec"
	SpanEventExecFailed = "exec failed"
)

// SpanName names a process's span: the executable's base name after an
// exec, the parent's comm for a forked child that has not exec'd yet.
func SpanName(ev *bpf.Event) string {
	if ev.Kind == bpf.KindExec {
		return path.Base(EscapeInvalidUTF8(ev.Filename))
	}
	return EscapeInvalidUTF8(ev.Comm)
}

// SpanExit sends an exit's attributes to its process's span and returns
// the span's status: failed, with the exit's body as the message and the
// exit code as error.type, when the code is not 0.
func (m *Mapper) SpanExit(ev *bpf.Event, s Sink) (failed bool, message string) {
	m.Attributes(ev, s)
	code := ev.ShellExitCode()
	if code == 0 {
		return false, ""
	}
	s.Str(ErrorType, strconv.Itoa(code))
	return true, m.Body(ev)
}

// SpanStart sends the attributes a process's span has from its start, before
// any exec is seen.
func SpanStart(pid uint32, s Sink) { s.Int(ProcessPID, int64(pid)) }

// MarkUnfinished flags a span ended at shutdown, before its process exited.
func MarkUnfinished(s Sink) { s.Bool(SpanUnfinished, true) }

// MarkAdopted flags the span of a process that was running before the
// receiver started.
func MarkAdopted(s Sink) { s.Bool(SpanAdopted, true) }
