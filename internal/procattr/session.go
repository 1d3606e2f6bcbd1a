package procattr

import (
	"strconv"
	"strings"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

// The session of an exec record.
const (
	ProcessSessionLeaderPID = "process.session_leader.pid" // semconv: the session id, a host pid
	ProcessGroupLeaderPID   = "process.group_leader.pid"   // semconv: the process group id, a host pid
	ProcessInteractive      = "process.interactive"        // semconv: has a controlling terminal
	ProcessVPID             = "process.vpid"               // semconv: only when it differs from process.pid
	TTY                     = "execsnoop.tty"              // the controlling terminal: pts/3, tty1
	AuditSessionID          = "execsnoop.audit.session_id" // when set
)

// TTYOf names a controlling terminal as /dev does below it: the kernel's
// pts3 is /dev/pts/3, other names (tty1, ttyS0, console) are /dev's own.
func TTYOf(ev *bpf.Event) string {
	if ev.TTYIndex < 0 {
		return ""
	}
	if n, ok := strings.CutPrefix(ev.TTYName, "pts"); ok && n == strconv.Itoa(int(ev.TTYIndex)) {
		return "pts/" + n
	}
	return ev.TTYName
}

func sessionAttributes(ev *bpf.Event, s Sink) {
	s.Int(ProcessSessionLeaderPID, int64(ev.SessionID))
	s.Int(ProcessGroupLeaderPID, int64(ev.PGID))
	s.Bool(ProcessInteractive, ev.TTYIndex >= 0)
	if tty := TTYOf(ev); tty != "" {
		s.Str(TTY, tty)
	}
	if ev.AuditSessionID != ^uint32(0) {
		s.Int(AuditSessionID, int64(ev.AuditSessionID))
	}
	if ev.VPID != 0 && ev.VPID != ev.PID {
		s.Int(ProcessVPID, int64(ev.VPID))
	}
}
