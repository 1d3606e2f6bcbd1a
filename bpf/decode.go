//go:build 386 || amd64 || arm64

package bpf

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"
)

// Compile-time checks that event.go's constants match the C enums: a
// mismatch makes an index out of range.
var (
	_ = [1]struct{}{}[uint8(KindExec)-uint8(execsnoopEventKindEVENT_EXEC)]
	_ = [1]struct{}{}[uint8(KindExit)-uint8(execsnoopEventKindEVENT_EXIT)]
	_ = [1]struct{}{}[uint8(KindFork)-uint8(execsnoopEventKindEVENT_FORK)]
	_ = [1]struct{}{}[uint8(SyscallExecve)-uint8(execsnoopExecSyscallEXEC_SYSCALL_EXECVE)]
	_ = [1]struct{}{}[uint8(SyscallExecveat)-uint8(execsnoopExecSyscallEXEC_SYSCALL_EXECVEAT)]
	_ = [1]struct{}{}[uint8(PrivSetuid)-uint8(execsnoopExecPrivilegesEXEC_PRIV_SETUID)]
	_ = [1]struct{}{}[uint8(PrivSetgid)-uint8(execsnoopExecPrivilegesEXEC_PRIV_SETGID)]
	_ = [1]struct{}{}[uint8(PrivFileCaps)-uint8(execsnoopExecPrivilegesEXEC_PRIV_FILE_CAPS)]
)

// ErrMalformedRecord wraps every decoding failure.
var ErrMalformedRecord = errors.New("malformed record")

// decoder turns raw records into Events. It keeps the state that saves
// allocations between records (interned comm strings) and the clock offset.
type decoder struct {
	maxArgs int
	clock   bootClock
	comms   map[[16]int8]string
}

func newDecoder(maxArgs int, clock bootClock) *decoder {
	return &decoder{maxArgs: maxArgs, clock: clock, comms: make(map[[16]int8]string)}
}

// copyStruct copies the fixed-size head of a record into dst, so that
// records of any alignment decode safely.
func copyStruct[T any](dst *T, raw []byte) bool {
	size := int(unsafe.Sizeof(*dst))
	if len(raw) < size {
		return false
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(dst)), size), raw)
	return true
}

func (d *decoder) decode(raw []byte, ev *Event) error {
	var hdr execsnoopEventHeader
	if !copyStruct(&hdr, raw) {
		return fmt.Errorf("%w: %d bytes is shorter than the event header", ErrMalformedRecord, len(raw))
	}
	args := ev.Args[:0]
	*ev = Event{
		Kind:     Kind(hdr.Kind),
		Time:     d.clock.wallTime(hdr.BootNs),
		PID:      hdr.Pid,
		TID:      hdr.Tid,
		PPID:     hdr.Ppid,
		UID:      hdr.Uid,
		GID:      hdr.Gid,
		Comm:     d.comm(hdr.Comm),
		CgroupID: hdr.CgroupId,
		Args:     args,
	}
	switch ev.Kind {
	case KindExec:
		return d.decodeExec(raw, ev)
	case KindExit:
		var e execsnoopExitEvent
		if !copyStruct(&e, raw) {
			return fmt.Errorf("%w: exit record of %d bytes", ErrMalformedRecord, len(raw))
		}
		ev.ExitCode = e.ExitCode
		ev.StartTime = d.clock.wallTime(e.StartBootNs)
		ev.Image = Image{PID: hdr.Pid, StartBootNs: e.StartBootNs, ExecSeq: e.ExecSeq}
		ev.Rusage = rusageOf(&e)
	case KindFork:
		var e execsnoopForkEvent
		if !copyStruct(&e, raw) {
			return fmt.Errorf("%w: fork record of %d bytes", ErrMalformedRecord, len(raw))
		}
		ev.StartTime = d.clock.wallTime(e.StartBootNs)
		ev.Image = Image{PID: hdr.Pid, StartBootNs: e.StartBootNs, ExecSeq: e.ExecSeq}
	default:
		return fmt.Errorf("%w: unknown event kind %d", ErrMalformedRecord, hdr.Kind)
	}
	return nil
}

func (d *decoder) decodeExec(raw []byte, ev *Event) error {
	var e execsnoopExecEvent
	if !copyStruct(&e, raw) {
		return fmt.Errorf("%w: exec record of %d bytes", ErrMalformedRecord, len(raw))
	}
	data := raw[unsafe.Sizeof(e):]
	argsSize, filenameSize := int(e.ArgsSize), int(e.FilenameSize)
	if argsSize+filenameSize > len(data) {
		return fmt.Errorf("%w: exec record claims %d+%d data bytes, has %d",
			ErrMalformedRecord, argsSize, filenameSize, len(data))
	}
	ev.Syscall = Syscall(e.Syscall)
	ev.Retval = e.Retval
	ev.LoginUID = e.Loginuid
	ev.Argc = e.Argc
	ev.ArgsTruncated = e.Flags&uint8(execsnoopExecFlagsEXEC_ARGS_TRUNCATED) != 0
	ev.FilenameTruncated = e.Flags&uint8(execsnoopExecFlagsEXEC_FILENAME_TRUNCATED) != 0
	ev.ArgsUnreadable = e.Flags&uint8(execsnoopExecFlagsEXEC_ARGS_UNREADABLE) != 0
	ev.RealUID, ev.SavedUID = e.RealUid, e.SavedUid
	ev.RealGID, ev.SavedGID = e.RealGid, e.SavedGid
	ev.CapEffective = e.CapEffective
	ev.Privileges = Privileges(e.Privileges)
	ev.StartTime = d.clock.wallTime(e.StartBootNs)
	ev.Image = Image{PID: e.Hdr.Pid, StartBootNs: e.StartBootNs, ExecSeq: e.ExecSeq}
	ev.ParentImage = Image{PID: e.Hdr.Ppid, StartBootNs: e.ParentStartBootNs, ExecSeq: e.ParentExecSeq}
	ev.SessionID, ev.PGID, ev.VPID, ev.AuditSessionID = e.Sid, e.Pgid, e.Vpid, e.AuditSessionId
	ev.TTYIndex = e.TtyIndex
	if e.TtyIndex >= 0 {
		name := unsafe.Slice((*byte)(unsafe.Pointer(&e.TtyName[0])), len(e.TtyName))
		if n := bytes.IndexByte(name, 0); n >= 0 {
			name = name[:n]
		}
		ev.TTYName = string(name) // only execs on a terminal allocate
	}

	tpSize, tsSize := int(e.TraceparentSize), int(e.TracestateSize)
	if argsSize+filenameSize+tpSize+tsSize > len(data) {
		return fmt.Errorf("%w: exec record claims %d+%d+%d+%d data bytes, has %d",
			ErrMalformedRecord, argsSize, filenameSize, tpSize, tsSize, len(data))
	}
	if tpSize+tsSize > 0 {
		tc := data[argsSize+filenameSize:]
		ev.TraceParent = string(tc[:tpSize])
		ev.TraceState = string(tc[tpSize : tpSize+tsSize])
	}
	ev.EnvUnreadable = e.Flags&uint8(execsnoopExecFlagsEXEC_ENV_UNREADABLE) != 0
	ev.EnvTruncated = e.Flags&uint8(execsnoopExecFlagsEXEC_ENV_TRUNCATED) != 0
	ev.TraceStateTruncated = e.Flags&uint8(execsnoopExecFlagsEXEC_TRACESTATE_TRUNCATED) != 0
	pathsAt := argsSize + filenameSize + tpSize + tsSize
	exeSize, cwdSize := int(e.ExePathSize), int(e.CwdSize)
	if pathsAt+exeSize+cwdSize > len(data) {
		return fmt.Errorf("%w: exec record claims %d+%d path bytes after %d, has %d",
			ErrMalformedRecord, exeSize, cwdSize, pathsAt, len(data))
	}
	fileFlags := execsnoopExecFileFlags(e.FileFlags)
	if cwdSize > 0 {
		ev.Cwd = string(data[pathsAt+exeSize : pathsAt+exeSize+cwdSize])
		ev.CwdCut = fileFlags&execsnoopExecFileFlagsEXEC_CWD_CUT != 0
	}
	if fileFlags&execsnoopExecFileFlagsEXEC_FILE_VALID != 0 {
		ev.Executable = executableOf(&e, fileFlags, data[pathsAt:pathsAt+exeSize])
	}
	filename := data[argsSize : argsSize+filenameSize]
	ev.Filename = string(bytes.TrimSuffix(filename, []byte{0}))
	ev.Args = d.splitArgs(ev.Args, data[:argsSize], ev)
	return nil
}

// splitArgs cuts the NUL-terminated arguments out of one string, so that
// all of them cost a single allocation.
func (d *decoder) splitArgs(args []string, blob []byte, ev *Event) []string {
	if len(blob) == 0 {
		return args
	}
	all := string(blob)
	for len(all) > 0 {
		if len(args) == d.maxArgs {
			ev.ArgsTruncated = true
			break
		}
		end := strings.IndexByte(all, 0)
		if end < 0 { // the budget cut the last argument
			args = append(args, all)
			break
		}
		args = append(args, all[:end])
		all = all[end+1:]
	}
	return args
}

func executableOf(e *execsnoopExecEvent, flags execsnoopExecFileFlags, path []byte) Executable {
	x := Executable{
		Valid:        true,
		Path:         string(path),
		PathCut:      flags&execsnoopExecFileFlagsEXEC_FILE_PATH_CUT != 0,
		Script:       flags&execsnoopExecFileFlagsEXEC_FILE_SCRIPT != 0,
		Overlay:      flags&execsnoopExecFileFlagsEXEC_FILE_OVERLAY != 0,
		UpperLayer:   flags&execsnoopExecFileFlagsEXEC_FILE_UPPER != 0,
		LayerUnknown: flags&execsnoopExecFileFlagsEXEC_FILE_LAYER_UNKNOWN != 0,
		RealKnown:    flags&execsnoopExecFileFlagsEXEC_FILE_REAL_INODE != 0,
		RealInode:    e.ExeRealIno,
		RealDev:      e.ExeRealDev,
		Inode:        e.ExeIno,
		Dev:          e.ExeDev,
		Mode:         uint32(e.ExeMode),
		Links:        e.ExeNlink,
		OwnerUID:     e.ExeUid,
		FSMagic:      e.ExeMagic,
		Changed:      time.Unix(e.ExeCtimeSec, int64(e.ExeCtimeNsec)),
		Modified:     time.Unix(e.ExeMtimeSec, int64(e.ExeMtimeNsec)),
	}
	// memfd_create's files are shmem (or hugetlbfs) files that no
	// directory holds, named "memfd:" and the caller's name. A file in
	// /dev/shm named so is in a directory, so it is not detached.
	detached := flags&execsnoopExecFileFlagsEXEC_FILE_DETACHED != 0
	x.Memfd = detached && (x.FSMagic == tmpfsMagic || x.FSMagic == hugetlbfsMagic) &&
		strings.HasPrefix(x.Path, "/memfd:")
	x.Deleted = !x.Memfd && x.Links == 0
	return x
}

func rusageOf(e *execsnoopExitEvent) Rusage {
	flags := execsnoopRusageFlags(e.RusageFlags)
	user, system := splitCPU(e.RuntimeNs, e.UtimeNs, e.StimeNs)
	return Rusage{
		Valid:                  flags&execsnoopRusageFlagsRUSAGE_VALID != 0,
		UserCPU:                user,
		SystemCPU:              system,
		MaxRSS:                 e.MaxrssKib * 1024,
		MinorFaults:            e.MinFlt,
		MajorFaults:            e.MajFlt,
		VoluntaryCtxSwitches:   e.Nvcsw,
		InvoluntaryCtxSwitches: e.Nivcsw,
		IOAccounted:            flags&execsnoopRusageFlagsRUSAGE_IO != 0,
		ReadBytes:              e.ReadBytes,
		WriteBytes:             e.WriteBytes,
		ThreadsCut:             flags&execsnoopRusageFlagsRUSAGE_THREADS_CUT != 0,
	}
}

// comm returns the comm as a string, allocating only for names not seen
// before; a host runs few distinct command names.
func (d *decoder) comm(raw [16]int8) string {
	if s, ok := d.comms[raw]; ok {
		return s
	}
	name := unsafe.Slice((*byte)(unsafe.Pointer(&raw[0])), len(raw))
	if n := bytes.IndexByte(name, 0); n >= 0 {
		name = name[:n]
	}
	s := string(name)
	if len(d.comms) >= maxInternedComms {
		clear(d.comms)
	}
	d.comms[raw] = s
	return s
}

const maxInternedComms = 4096

// bootClock converts the kernel's boot-time clock (bpf_ktime_get_boot_ns)
// to wall-clock time: offset is realtime minus boottime, refreshed by the
// reader so that clock steps (NTP, settimeofday) are followed.
type bootClock struct {
	offset time.Duration
}

func (c bootClock) wallTime(bootNS uint64) time.Time {
	if bootNS == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(bootNS)+int64(c.offset))
}
