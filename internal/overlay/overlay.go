// Package overlay decides which overlayfs layer an executable's real file
// is in where the kernel could not (before Linux 6.5, an overlay file's
// real file carries the overlay's own path, so the BPF program reads only
// the real inode; see bpf/exefile.bpf.h). It finds the overlay mount by
// its device in the host's mountinfo and looks the file up in the upper
// and lower directories, deciding only on an inode match: a file removed
// or replaced since the exec stays undecided rather than guessed.
package overlay

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

// Layers decides layers from the mount table of one mount namespace.
// Not safe for concurrent use: one reading goroutine calls it.
type Layers struct {
	root      string // prefix of the paths in mountinfo, e.g. /proc/1/root
	mountinfo string
	mounts    map[uint64]mount // overlay mounts by st_dev
}

type mount struct {
	point string   // where it is mounted, in root's namespace
	upper string   // upperdir; empty for a read-only overlay
	lower []string // lowerdir, top first
}

// New reads the mount table of procRoot's process 1 (the host's, when the
// agent shares the host's PID namespace, as the chart's DaemonSet does),
// whose paths it opens through procRoot/1/root.
func New(procRoot string) *Layers {
	return &Layers{
		root:      filepath.Join(procRoot, "1", "root"),
		mountinfo: filepath.Join(procRoot, "1", "mountinfo"),
	}
}

// Layer reports whether the real file the kernel read for x is in the
// upper layer, and ok when it was found in the upper or a lower layer by
// its inode. For an executable the kernel decided, it returns the
// kernel's answer; for one not on overlayfs, ok is false.
func (l *Layers) Layer(x *bpf.Executable) (upper, ok bool) {
	if !x.Valid || !x.Overlay {
		return false, false
	}
	if !x.LayerUnknown {
		return x.UpperLayer, true
	}
	if !x.RealKnown || x.PathCut {
		return false, false
	}
	m, found := l.mount(x.StatDev())
	if !found {
		return false, false
	}
	rel := x.Path
	if m.point != "/" && strings.HasPrefix(x.Path, m.point+"/") {
		rel = strings.TrimPrefix(x.Path, m.point)
	} // else the process's root is the overlay's (a container's): the path is already relative to it
	if m.upper != "" && l.holds(m.upper, rel, x) {
		return true, true
	}
	for _, dir := range m.lower {
		if l.holds(dir, rel, x) {
			return false, true
		}
	}
	return false, false
}

// holds reports whether dir/rel is the real file the kernel ran.
func (l *Layers) holds(dir, rel string, x *bpf.Executable) bool {
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(l.root, dir, rel), &st); err != nil {
		return false
	}
	return st.Ino == x.RealInode && st.Dev == x.RealStatDev()
}

// mount returns the overlay mount of device dev, reading the mount table
// again when dev is new (a container started since).
func (l *Layers) mount(dev uint64) (mount, bool) {
	if m, ok := l.mounts[dev]; ok {
		return m, true
	}
	data, err := os.ReadFile(l.mountinfo)
	if err != nil {
		return mount{}, false
	}
	l.mounts = parseMountinfo(data)
	m, ok := l.mounts[dev]
	return m, ok
}

// parseMountinfo returns the overlay mounts of a mountinfo file
// (proc_pid_mountinfo(5)) by their st_dev.
func parseMountinfo(data []byte) map[uint64]mount {
	mounts := map[uint64]mount{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20) // container overlays have long lowerdir lists
	for sc.Scan() {
		// 36 35 0:45 / /merged rw,relatime shared:1 - overlay overlay rw,lowerdir=...,upperdir=...
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 || g[0] != "overlay" || f[3] != "/" {
			continue
		}
		major, minor, ok := strings.Cut(f[2], ":")
		maj, err1 := strconv.ParseUint(major, 10, 32)
		min, err2 := strconv.ParseUint(minor, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		m := mount{point: unescape(f[4])}
		for _, opt := range strings.Split(g[2], ",") {
			switch k, v, _ := strings.Cut(opt, "="); k {
			case "upperdir":
				m.upper = unescape(v)
			case "lowerdir":
				m.lower = splitLower(unescape(v))
			}
		}
		mounts[unix.Mkdev(uint32(maj), uint32(min))] = m
	}
	return mounts
}

// splitLower splits a lowerdir list at the colons overlayfs does not see
// escaped ("\:" is a colon in a name).
func splitLower(v string) []string {
	var dirs []string
	start := 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case ':':
			dirs = append(dirs, strings.ReplaceAll(v[start:i], `\:`, ":"))
			start = i + 1
		}
	}
	return append(dirs, strings.ReplaceAll(v[start:], `\:`, ":"))
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
