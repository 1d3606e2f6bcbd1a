package bpf

import (
	"fmt"
	"time"
)

// Kind tells which kind of process event an Event is.
type Kind uint8

// The values are enum event_kind's in execsnoop.h; decode.go checks at
// compile time that they still match.
const (
	KindExec Kind = 1
	KindExit Kind = 2
	KindFork Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindExec:
		return "exec"
	case KindExit:
		return "exit"
	case KindFork:
		return "fork"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Syscall tells which system call started an exec.
type Syscall uint8

// The values are enum exec_syscall's in execsnoop.h (checked in decode.go).
const (
	SyscallUnknown  Syscall = 0
	SyscallExecve   Syscall = 1
	SyscallExecveat Syscall = 2
)

func (s Syscall) String() string {
	switch s {
	case SyscallExecve:
		return "execve"
	case SyscallExecveat:
		return "execveat"
	}
	return "unknown"
}

// Event is one decoded process event. Read fills it in place: its strings
// stay valid after the next Read, but the Args slice is reused, so copy it
// (or the Event) to keep it.
type Event struct {
	Kind Kind
	// Time is when the kernel saw the event, as wall-clock time.
	Time     time.Time
	PID      uint32 // thread group id
	TID      uint32
	PPID     uint32 // the real parent's thread group id
	UID      uint32 // effective (cred->euid), as a global id (the initial user namespace's)
	GID      uint32 // effective
	Comm     string // the task's comm; after the exec for exec events
	CgroupID uint64 // cgroup v2 id: the inode of the cgroup's directory

	// Exec events.
	Syscall           Syscall
	Retval            int32  // 0, or -errno for a failed exec
	LoginUID          uint32 // math.MaxUint32 when unset
	Filename          string // as passed to the syscall (for execveat fd-relative: /dev/fd/N/...)
	Args              []string
	Argc              uint32 // the real argument count, even when Args was cut
	ArgsTruncated     bool   // Args hit the byte budget or the count limit
	FilenameTruncated bool
	ArgsUnreadable    bool // the kernel could not read the argument memory

	// Exec events: the credentials after a successful exec (the caller's
	// for a failed one), beside UID and GID.
	RealUID, SavedUID uint32
	RealGID, SavedGID uint32
	// CapEffective has bit n set for capability n (CAP_CHOWN is 0).
	CapEffective uint64
	// Privileges is what this exec raised (never set for a failed exec).
	Privileges Privileges

	// Exec events with Options.TraceContext: the values of the new image's
	// TRACEPARENT and TRACESTATE environment variables as found (not
	// validated; "" when absent), and how the search went.
	TraceParent, TraceState string
	EnvUnreadable           bool // a page of the environment could not be read
	EnvTruncated            bool // the environment is longer than the search budget
	TraceStateTruncated     bool // TRACESTATE was cut at 512 bytes

	// Exit events: the raw wait(2) status; see ExitStatus, Signal, CoreDumped.
	ExitCode uint32
	// Exec, exit and fork events: when the process started (its fork;
	// an exec does not restart it).
	StartTime time.Time
	// Exec, exit and fork events: the process image, as the kernel names
	// it (procattr formats execsnoop.exec.id from it): the process's
	// start on the boot-time clock, which unlike StartTime does not move
	// with the wall clock, and its exec counter (task->self_exec_id).
	Image Image
	// Exec events: the image the real parent (PPID) runs at the exec.
	ParentImage Image

	// Exec events: the session. SessionID and PGID are host pids; VPID is
	// the tgid in the process's own PID namespace (PID outside one).
	SessionID, PGID, VPID uint32
	AuditSessionID        uint32 // math.MaxUint32 when unset
	// The controlling terminal as the kernel names it (tty->name: pts3,
	// tty1), "" without one; TTYIndex is its index, -1 without one.
	TTYName  string
	TTYIndex int32
	// Exit events: what the whole process used.
	Rusage Rusage

	// Exec events: the working directory at the exec, absolute, read in
	// the kernel (fs->pwd) for failed execs too; "" when unread. CwdCut:
	// it hit PathSizeLimit or PathDepthLimit and holds only its tail.
	Cwd    string
	CwdCut bool
	// Exec events: the file a successful exec runs; zero for a failed one.
	Executable Executable
}

// The bounds of the kernel's path walk (enum path_limits in execsnoop.h).
const (
	PathSizeLimit  = int(execsnoopPathLimitsPATH_SIZE_LIMIT)  // bytes, with the NUL
	PathDepthLimit = int(execsnoopPathLimitsPATH_DEPTH_LIMIT) // names plus mounts crossed
)

// Executable is what the kernel says at a successful exec about the file
// it runs (bprm->file: for a script, its interpreter).
type Executable struct {
	Valid bool // read: the exec succeeded
	// Path is absolute, walked from the file's dentry up to the process's
	// root, crossing mounts (what /proc/PID/exe shows, without
	// " (deleted)"). An anonymous file has "/" and its own name, as
	// "/memfd:NAME". PathCut: the walk hit a bound; Path is the tail.
	Path    string
	PathCut bool
	// Script: the exec named a file that an interpreter runs (a #!
	// script or a binfmt_misc format); Path is the interpreter, the
	// Event's Filename the script as passed.
	Script bool
	// Memfd: an anonymous file from memfd_create (fileless execution).
	// Deleted: a named file with no links left (never with Memfd).
	Memfd, Deleted bool
	// Overlay: the file is on overlayfs; UpperLayer: its real file is in
	// the writable upper layer; LayerUnknown: the kernel could not tell.
	// RealKnown: the kernel could not tell the layer but read the real
	// file's inode (RealInode, RealDev), for user space to decide (before
	// Linux 6.5; see internal/overlay).
	Overlay, UpperLayer, LayerUnknown bool
	RealKnown                         bool
	RealInode                         uint64
	RealDev                           uint32 // the kernel's dev_t encoding, as Dev

	Inode    uint64
	Dev      uint32 // the kernel's dev_t encoding (major << 20 | minor)
	Mode     uint32 // st_mode: file type and permission bits
	Links    uint32
	OwnerUID uint32
	FSMagic  uint32 // the file system's magic number (statfs f_type)
	Changed  time.Time
	Modified time.Time
}

// StatDev is Dev as stat(2) reports st_dev (the kernel's new_encode_dev),
// to compare the file the kernel ran with a file user space opens.
func (x *Executable) StatDev() uint64 { return statDev(x.Dev) }

// RealStatDev is RealDev as stat(2) reports st_dev.
func (x *Executable) RealStatDev() uint64 { return statDev(x.RealDev) }

func statDev(dev uint32) uint64 {
	major, minor := uint64(dev>>20), uint64(dev&(1<<20-1))
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

// File system magic numbers an anonymous executable can live on.
const (
	tmpfsMagic     = 0x01021994
	hugetlbfsMagic = 0x958458f6
)

// Image names one process image on a host for one boot: the same on the
// image's exec, exit and fork (of its children: their own start) records,
// different after the next exec by the process or for the next process
// with its pid.
type Image struct {
	PID         uint32
	StartBootNs uint64 // the process's start, nanoseconds since boot
	ExecSeq     uint64 // exec counter: one more after each exec
}

// Privileges is the set of ways an exec raised the process's privileges.
type Privileges uint8

// The values are enum exec_privileges' in execsnoop.h (checked in decode.go).
const (
	// PrivSetuid: the file's set-user-ID bit made its owner the effective
	// uid, which differs from the real one.
	PrivSetuid Privileges = 1 << 0
	// PrivSetgid: the same for the set-group-ID bit and the gid.
	PrivSetgid Privileges = 1 << 1
	// PrivFileCaps: the file's capabilities gave a process whose effective
	// uid is not 0 permitted capabilities.
	PrivFileCaps Privileges = 1 << 2
)

// Failed reports whether the event is an exec that returned an error.
func (e *Event) Failed() bool { return e.Kind == KindExec && e.Retval < 0 }

// ExitStatus is the status passed to exit(2); meaningful when Signal is 0.
func (e *Event) ExitStatus() int { return int(e.ExitCode>>8) & 0xff }

// Signal is the signal that terminated the process, or 0.
func (e *Event) Signal() int { return int(e.ExitCode & 0x7f) }

// CoreDumped reports whether the terminating signal dumped core.
func (e *Event) CoreDumped() bool { return e.ExitCode&0x80 != 0 }

// ShellExitCode is the exit code as shells report it: the status, or
// 128+signal when a signal killed the process.
func (e *Event) ShellExitCode() int {
	if sig := e.Signal(); sig != 0 {
		return 128 + sig
	}
	return e.ExitStatus()
}

// Lifetime is how long the process ran (exit events).
func (e *Event) Lifetime() time.Duration {
	if e.StartTime.IsZero() {
		return 0
	}
	return e.Time.Sub(e.StartTime)
}
