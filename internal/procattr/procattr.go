// Package procattr is the one mapping from a process event to OpenTelemetry
// names and values: the record's resource, the log record (event name,
// time, severity, body, attributes) and the keys of process spans. The
// collector receiver, the span builder and the CLI all call it, each with a
// Sink for its own attribute type.
package procattr

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/cgroup"
	"github.com/otelexecsnoop/execsnoop/internal/overlay"
	"github.com/otelexecsnoop/execsnoop/internal/proctable"
	"github.com/otelexecsnoop/execsnoop/internal/redact"
)

// Semantic-convention attributes, checked against the registry snapshot
// named by RegistryVersion.
const (
	ProcessPID            = "process.pid"
	ProcessParentPID      = "process.parent_pid"
	ProcessExecutableName = "process.executable.name"
	ProcessExecutablePath = "process.executable.path"
	ProcessCommand        = "process.command"
	ProcessCommandArgs    = "process.command_args"
	ProcessArgsCount      = "process.args_count"
	ProcessUserID         = "process.user.id"
	ProcessExitCode       = "process.exit.code"
	ProcessCreationTime   = "process.creation.time"
	ProcessExitTime       = "process.exit.time"
	ProcessLinuxCgroup    = "process.linux.cgroup"
	ThreadID              = "thread.id"
	ThreadName            = "thread.name"
	ErrorType             = "error.type"
)

// Project attributes: everything the conventions lack, under one prefix.
const (
	GroupID        = "execsnoop.group.id"           // effective gid
	LoginUID       = "execsnoop.login_uid"          // audit login uid, when set
	ExecSyscall    = "execsnoop.exec.syscall"       // execve or execveat
	ExecRetval     = "execsnoop.exec.retval"        // 0 or -errno
	ArgsTruncated  = "execsnoop.args.truncated"     // argv hit the byte or count limit
	ArgsUnreadable = "execsnoop.args.unreadable"    // the kernel could not read argv
	ExitStatus     = "execsnoop.exit.status"        // the status passed to exit(2)
	ExitSignal     = "execsnoop.exit.signal"        // the terminating signal's name
	CoreDumped     = "execsnoop.exit.core_dumped"   // the signal dumped core
	Lifetime       = "execsnoop.process.lifetime"   // seconds from start to exit
	FilenameCut    = "execsnoop.filename.truncated" // the filename exceeded PATH_MAX
	ArgsRedacted   = "execsnoop.args.redacted"      // secrets in argv were masked
	ArgsEscaped    = "execsnoop.args.escaped"       // non-UTF-8 arguments were escaped (\xNN, \\)
)

// MaxAttributes is how many attributes Attributes emits for one event at
// most (a successful exec of a script on overlayfs with a cgroup, every
// flag, capabilities, raised privileges, the executable_file group and the
// lineage), so that sinks can size storage once.
const MaxAttributes = 52

// Event names.
const (
	EventExec = "process.exec"
	EventExit = "process.exit"
	EventFork = "process.fork"
)

// Sink receives attributes; each output format implements it once.
type Sink interface {
	Str(key, value string)
	Int(key string, value int64)
	Double(key string, value float64)
	Bool(key string, value bool)
	Strs(key string, values []string)
	Ints(key string, values []int64)
}

// MapSink collects attributes into a map with their Go types (string
// slices copied): procattr's own view, for comparing an output format with.
type MapSink map[string]any

func (m MapSink) Str(k, v string)            { m[k] = v }
func (m MapSink) Int(k string, v int64)      { m[k] = v }
func (m MapSink) Double(k string, v float64) { m[k] = v }
func (m MapSink) Bool(k string, v bool)      { m[k] = v }
func (m MapSink) Strs(k string, v []string)  { m[k] = slices.Clone(v) }
func (m MapSink) Ints(k string, v []int64)   { m[k] = slices.Clone(v) }

// Severity levels, as numbered by the OpenTelemetry log data model.
type Severity struct {
	Number int32
	Text   string
}

var (
	SeverityInfo = Severity{Number: 9, Text: "INFO"}
	SeverityWarn = Severity{Number: 13, Text: "WARN"}
)

// Mapper maps events; its zero value leaves out cgroup paths and container
// ids and does not redact.
type Mapper struct {
	Cgroups  *cgroup.Resolver
	Redactor *redact.Redactor
	// Layers decides an overlay executable's layer where the kernel
	// could not (before Linux 6.5); nil leaves it out there.
	Layers *overlay.Layers
	// ExecutableFile adds the executable_file group (the inode, owner,
	// mode and times of the file an exec runs) to exec records.
	ExecutableFile bool
	// Omit leaves these exec_context groups out of exec records.
	Omit Group
	// Table gives exec records their lineage (nil: none); the caller
	// keeps it current with every event, after mapping the event.
	Table *proctable.Table
}

// args is argv as it may leave the host: secrets masked, and arguments
// that are not UTF-8 (which OTLP strings must be) escaped without loss.
func (m *Mapper) args(ev *bpf.Event) (args []string, redacted, escaped bool) {
	args = ev.Args
	if m.Redactor != nil {
		args, redacted = m.Redactor.Args(args)
	}
	for i, a := range args {
		if utf8.ValidString(a) {
			continue
		}
		if !escaped && !redacted {
			args = slices.Clone(args) // never write to the event's own slice
		}
		args[i] = EscapeInvalidUTF8(a)
		escaped = true
	}
	return args, redacted, escaped
}

// EscapeInvalidUTF8 makes a string valid UTF-8 without losing a byte: each
// byte of an invalid sequence becomes \xNN and each backslash \\, so the
// original can be recovered.
func EscapeInvalidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// EventName is the log record's event name.
func EventName(ev *bpf.Event) string {
	switch ev.Kind {
	case bpf.KindExec:
		return EventExec
	case bpf.KindExit:
		return EventExit
	}
	return EventFork
}

// SeverityOf is WARN for a failed exec and INFO otherwise.
func SeverityOf(ev *bpf.Event) Severity {
	if ev.Failed() {
		return SeverityWarn
	}
	return SeverityInfo
}

// Body is a line for people: the shell-quoted command line of an exec, the
// outcome and lifetime of an exit.
func (m *Mapper) Body(ev *bpf.Event) string {
	switch ev.Kind {
	case bpf.KindExec:
		args, _, _ := m.args(ev)
		line := QuoteArgs(args)
		if ev.Failed() {
			return fmt.Sprintf("exec failed (%s): %s", ErrnoName(ev.Retval), line)
		}
		return line
	case bpf.KindExit:
		lifetime := ev.Lifetime().Round(10 * time.Millisecond).Seconds()
		if sig := ev.Signal(); sig != 0 {
			core := ""
			if ev.CoreDumped() {
				core = " (core dumped)"
			}
			return fmt.Sprintf("%s was killed by %s after %.2fs%s", ev.Comm, unix.SignalName(syscall.Signal(sig)), lifetime, core)
		}
		return fmt.Sprintf("%s exited with status %d after %.2fs", ev.Comm, ev.ExitStatus(), lifetime)
	}
	return fmt.Sprintf("%s forked process %d", ev.Comm, ev.PID)
}

// ErrnoName names a negative errno ("ENOENT"), or gives its number.
func ErrnoName(retval int32) string {
	if name := unix.ErrnoName(syscall.Errno(-retval)); name != "" {
		return name
	}
	return fmt.Sprintf("errno %d", -retval)
}

// Container is where a process runs, from its cgroup path: the container
// runtime's id and, in a Kubernetes pod, the pod's uid ("" when unknown).
type Container struct{ ID, PodUID string }

// Container returns the container and pod the process runs in.
func (m *Mapper) Container(ev *bpf.Event) Container {
	path := m.cgroupPath(ev)
	return Container{ID: cgroup.ContainerID(path), PodUID: cgroup.PodUID(path)}
}

func (m *Mapper) cgroupPath(ev *bpf.Event) string {
	if m.Cgroups == nil || ev.CgroupID == 0 {
		return ""
	}
	return m.Cgroups.Path(ev.CgroupID)
}

// Attributes sends every attribute of the event to s.
func (m *Mapper) Attributes(ev *bpf.Event, s Sink) {
	s.Int(ProcessPID, int64(ev.PID))
	s.Int(ProcessParentPID, int64(ev.PPID))
	s.Int(ProcessUserID, int64(ev.UID))
	s.Int(GroupID, int64(ev.GID))
	s.Int(ThreadID, int64(ev.TID))
	s.Str(ThreadName, EscapeInvalidUTF8(ev.Comm))
	idAttributes(ev, s)
	if p := m.cgroupPath(ev); p != "" {
		// As a /proc/PID/cgroup line of the v2 hierarchy.
		s.Str(ProcessLinuxCgroup, "0::"+p)
	}
	switch ev.Kind {
	case bpf.KindExec:
		m.execAttributes(ev, s)
	case bpf.KindExit:
		s.Int(ProcessExitCode, int64(ev.ShellExitCode()))
		s.Str(ProcessExitTime, ev.Time.UTC().Format(time.RFC3339Nano))
		s.Str(ProcessCreationTime, ev.StartTime.UTC().Format(time.RFC3339Nano))
		s.Double(Lifetime, ev.Lifetime().Seconds())
		if sig := ev.Signal(); sig != 0 {
			s.Str(ExitSignal, unix.SignalName(syscall.Signal(sig)))
			s.Bool(CoreDumped, ev.CoreDumped())
		} else {
			s.Int(ExitStatus, int64(ev.ExitStatus()))
		}
		rusageAttributes(&ev.Rusage, s)
	case bpf.KindFork:
		s.Str(ProcessCreationTime, ev.StartTime.UTC().Format(time.RFC3339Nano))
	}
}

func (m *Mapper) execAttributes(ev *bpf.Event, s Sink) {
	m.executableAttributes(ev, s)
	args, redacted, escaped := m.args(ev)
	if len(args) > 0 {
		s.Str(ProcessCommand, args[0])
	}
	s.Strs(ProcessCommandArgs, args)
	if redacted {
		s.Bool(ArgsRedacted, true)
	}
	if escaped {
		s.Bool(ArgsEscaped, true)
	}
	s.Int(ProcessArgsCount, int64(ev.Argc))
	s.Str(ExecSyscall, ev.Syscall.String())
	s.Int(ExecRetval, int64(ev.Retval))
	if ev.Failed() {
		s.Str(ErrorType, ErrnoName(ev.Retval))
	}
	if ev.LoginUID != ^uint32(0) {
		s.Int(LoginUID, int64(ev.LoginUID))
	}
	if m.wants(GroupCredentials) {
		credAttributes(ev, s)
	}
	if m.wants(GroupSession) {
		sessionAttributes(ev, s)
	}
	m.lineageAttributes(ev, s)
	s.Str(ProcessCreationTime, ev.StartTime.UTC().Format(time.RFC3339Nano))
	if ev.ArgsTruncated {
		s.Bool(ArgsTruncated, true)
	}
	if ev.ArgsUnreadable {
		s.Bool(ArgsUnreadable, true)
	}
	if ev.FilenameTruncated {
		s.Bool(FilenameCut, true)
	}
}

// QuoteArgs joins argv into a line a POSIX shell would split back into
// the same arguments: plain words stay bare, others are single-quoted,
// and control or non-UTF-8 bytes use $'...' escapes.
func QuoteArgs(args []string) string {
	var b strings.Builder
	size := len(args) * 3 // separators and the quotes most arguments need
	for _, a := range args {
		size += len(a)
	}
	b.Grow(size)
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		quoteArg(&b, a)
	}
	return b.String()
}

func quoteArg(b *strings.Builder, a string) {
	if a != "" && strings.IndexFunc(a, needsQuote) < 0 {
		b.WriteString(a)
		return
	}
	if utf8.ValidString(a) && strings.IndexFunc(a, unicode.IsControl) < 0 {
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(a, "'", `'\''`))
		b.WriteByte('\'')
		return
	}
	b.WriteString("$'")
	for i := 0; i < len(a); {
		r, size := utf8.DecodeRuneInString(a[i:])
		switch {
		case r == '\'' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError && size == 1, unicode.IsControl(r):
			for _, c := range []byte(a[i : i+size]) {
				fmt.Fprintf(b, `\x%02x`, c)
			}
		default:
			b.WriteString(a[i : i+size])
		}
		i += size
	}
	b.WriteByte('\'')
}

func needsQuote(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	}
	return !strings.ContainsRune("-_./=:,+@%^", r)
}
