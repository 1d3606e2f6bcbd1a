package procattr

import (
	"fmt"
	"path"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

// What ran: the file a successful exec runs, as the kernel opened it, and
// where the exec ran. A failed exec ran nothing: it has ExecFilename and
// the working directory, no process.executable.*.
const (
	ProcessWorkingDirectory = "process.working_directory"             // semconv: absolute, from the kernel at exec
	ExecFilename            = "execsnoop.exec.filename"               // the filename as passed to execve
	ExecScriptPath          = "execsnoop.exec.script.path"            // a script's absolute path: working directory + filename
	ExecutablePathCut       = "execsnoop.executable.path_truncated"   // process.executable.path is the tail of a longer path
	WorkingDirectoryCut     = "execsnoop.working_directory_truncated" // the same for process.working_directory
	ExecutableMemfd         = "execsnoop.executable.memfd"            // an anonymous memfd_create file: fileless execution
	ExecutableDeleted       = "execsnoop.executable.deleted"          // a named file with no links left
	ExecutableUpperLayer    = "execsnoop.executable.upper_layer"      // on overlayfs: in the upper (writable) layer
)

// The executable_file group (Mapper.ExecutableFile): the file's inode.
const (
	ExecutableInode    = "execsnoop.executable.inode"
	ExecutableOwnerID  = "execsnoop.executable.owner.id" // the owner's uid
	ExecutableMode     = "execsnoop.executable.mode"     // permission bits in octal: 0755, 4755
	ExecutableChanged  = "execsnoop.executable.changed"  // the inode's change time (ctime)
	ExecutableModified = "execsnoop.executable.modified" // the content's modification time (mtime)
)

// ScriptPath is the absolute path of the script a successful exec ran
// (ev.Executable.Script), "" for other execs. The kernel keeps only the
// name passed (bprm->filename), so a relative one is joined to the working
// directory lexically: ".." and symlinks are not resolved as the kernel
// did. "" when the working directory was cut.
func ScriptPath(ev *bpf.Event) string {
	if !ev.Executable.Script || ev.Filename == "" {
		return ""
	}
	if path.IsAbs(ev.Filename) {
		return path.Clean(ev.Filename)
	}
	if ev.Cwd == "" || ev.CwdCut {
		return ""
	}
	return path.Join(ev.Cwd, ev.Filename)
}

// FileMode formats permission bits as chmod takes them: 0755, 4755.
func FileMode(mode uint32) string {
	return fmt.Sprintf("%04o", mode&0o7777)
}

func (m *Mapper) executableAttributes(ev *bpf.Event, s Sink) {
	s.Str(ExecFilename, EscapeInvalidUTF8(ev.Filename))
	if ev.Cwd != "" {
		s.Str(ProcessWorkingDirectory, EscapeInvalidUTF8(ev.Cwd))
		if ev.CwdCut {
			s.Bool(WorkingDirectoryCut, true)
		}
	}
	x := &ev.Executable
	if !x.Valid {
		return
	}
	exe := EscapeInvalidUTF8(x.Path)
	s.Str(ProcessExecutablePath, exe)
	s.Str(ProcessExecutableName, path.Base(exe))
	if x.PathCut {
		s.Bool(ExecutablePathCut, true)
	}
	if p := ScriptPath(ev); p != "" {
		s.Str(ExecScriptPath, EscapeInvalidUTF8(p))
	}
	s.Bool(ExecutableMemfd, x.Memfd)
	s.Bool(ExecutableDeleted, x.Deleted)
	if x.Overlay && !x.LayerUnknown {
		s.Bool(ExecutableUpperLayer, x.UpperLayer)
	} else if x.Overlay && m.Layers != nil {
		if upper, ok := m.Layers.Layer(x); ok {
			s.Bool(ExecutableUpperLayer, upper)
		}
	}
	if m.ExecutableFile {
		s.Int(ExecutableInode, int64(x.Inode))
		s.Int(ExecutableOwnerID, int64(x.OwnerUID))
		s.Str(ExecutableMode, FileMode(x.Mode))
		s.Str(ExecutableChanged, x.Changed.UTC().Format(time.RFC3339Nano))
		s.Str(ExecutableModified, x.Modified.UTC().Format(time.RFC3339Nano))
	}
}
