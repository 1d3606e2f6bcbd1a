package main

import (
	"bufio"
	"debug/elf"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// The busybox-static package's binary: /bin/sh, true, sleep, unshare,
// setpriv... of the guest are its applets.
const busybox = "/bin/busybox"

// guestBinaries are built for the guest (static, no cgo) into dir/bin.
var guestBinaries = []guestBinary{

	{"init", []string{"build", "./test/kernels/guest"}},
	{"execsnoop", []string{"build", "./cmd/execsnoop"}},
	{"execstorm", []string{"build", "./cmd/execstorm"}},
	{"bpf.test", []string{"test", "-c", "./bpf"}},
	{"execsnoop.test", []string{"test", "-c", "./cmd/execsnoop"}},
}

type guestBinary struct {
	name string
	args []string // go ARGS[0] -o dir/bin/name ARGS[1:]
}

// hostTools are the host's programs (with their shared libraries) that the
// tests run and busybox lacks or does differently: bash (the tests check
// that the CLI's quoting round-trips through it) and util-linux's setpriv
// (busybox's has no --reuid) and unshare (busybox's has no --kill-child);
// setcap (libcap2-bin) and script (bsdutils), which busybox lacks, for the
// credential and terminal tests of the bpf package; and id, grep and true,
// which the credential and executable-path tests copy under other names,
// into memfds and into deep directories (a busybox applet is chosen by its
// name, so a copy of busybox's would not run). All go into /bin.
var hostTools = []string{"/bin/bash", "/bin/setpriv", "/bin/unshare", "/usr/sbin/setcap", "/usr/bin/script",
	"/usr/bin/id", "/bin/grep", "/bin/true"}

// buildGuest builds the guest's programs for the architecture into dir/bin.
func buildGuest(dir string, a arch) error {
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return err
	}
	for _, b := range guestBinaries {
		args := slices.Concat(b.args[:1], []string{"-o", filepath.Join(dir, "bin", b.name)}, b.args[1:])
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+a.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// writeInitramfs writes an uncompressed newc cpio archive (the kernel
// unpacks it without a decompressor, which under TCG is the faster boot)
// holding busybox and its applets, the programs built into dir/bin, and
// /init. amd64's busybox and tools are the host's; another architecture's
// come from its Debian packages (toolTree).
func writeInitramfs(dir, path string, a arch) error {
	tools := &guestTools{busybox: busybox, a: a}
	if a.Debian != "amd64" {
		root, err := toolTree(filepath.Dir(dir), a)
		if err != nil {
			return err
		}
		tools.root = root
		if tools.busybox, err = inTree(root, busybox); err != nil {
			return fmt.Errorf("%s busybox-static: %v", a.Debian, err)
		}
	}
	if err := requireStatic(tools.busybox); err != nil {
		return err
	}
	// The applets: the host's busybox-static lists them (the same Debian
	// release builds every architecture's with the same configuration).
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list: %v", busybox, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := &cpioWriter{w: bw}
	for _, d := range []string{"bin", "dev", "etc", "proc", "root", "sys", "tmp", "usr"} {
		w.dir(d, 0o755)
	}
	w.symlink("sbin", "bin")
	w.symlink("usr/bin", "../bin")
	w.symlink("usr/sbin", "../bin")
	// The kernel opens /dev/console for init before anything is mounted.
	w.node("dev/console", 0o600, 5, 1)
	w.node("dev/null", 0o666, 1, 3)
	w.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	w.file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	// Every applet is a hard link of busybox, as every tool of a Debian
	// host is a file of its own: the kernel names a process after the
	// file it runs in some cases (execveat of a descriptor since 6.14).
	var applets []string
	for _, applet := range strings.Fields(string(out)) {
		if applet == "init" || applet == "linuxrc" || slices.ContainsFunc(hostTools, func(tool string) bool { return filepath.Base(tool) == applet }) ||
			slices.ContainsFunc(guestBinaries, func(b guestBinary) bool { return b.name == applet }) {
			continue
		}
		applets = append(applets, "bin/"+applet)
	}
	if err := w.hardlinks(tools.busybox, 0o755, applets...); err != nil {
		return err
	}
	if err := w.hostTools(tools); err != nil {
		return err
	}
	for _, b := range guestBinaries {
		target := "bin/" + b.name
		if b.name == "init" {
			target = "init"
		}
		if err := w.copy(target, filepath.Join(dir, "bin", b.name), 0o755); err != nil {
			return err
		}
	}
	w.trailer()
	if w.err != nil {
		return w.err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// guestTools is where a guest's busybox and hostTools come from: the
// host's (root "") or a tree of another architecture's packages.
type guestTools struct {
	busybox string // host path
	root    string
	a       arch
}

// hostTools copies hostTools into /bin with the libraries ldd names, at
// the paths ldd names; from a tree of packages, with the libraries their
// ELF headers name (ldd cannot run another architecture's programs).
func (c *cpioWriter) hostTools(t *guestTools) error {
	if t.root != "" {
		libs := map[string]string{}
		for _, tool := range hostTools {
			src, err := findTool(t.root, tool)
			if err != nil {
				return err
			}
			if err := c.copy("bin/"+filepath.Base(tool), src, 0o755); err != nil {
				return err
			}
			if err := elfDeps(t.root, src, t.a, libs); err != nil {
				return err
			}
		}
		for _, lib := range slices.Sorted(maps.Keys(libs)) {
			c.mkdirAll(filepath.Dir(lib)[1:])
			if err := c.copy(lib[1:], libs[lib], 0o755); err != nil {
				return err
			}
		}
		return c.err
	}
	libs := map[string]bool{}
	for _, tool := range hostTools {
		if err := c.copy("bin/"+filepath.Base(tool), tool, 0o755); err != nil {
			return fmt.Errorf("%v (the guest's tests need it)", err)
		}
		out, err := exec.Command("ldd", tool).Output()
		if err != nil {
			return fmt.Errorf("ldd %s: %v", tool, err)
		}
		for _, m := range lddRE.FindAllStringSubmatch(string(out), -1) {
			libs[m[1]] = true
		}
	}
	for _, lib := range slices.Sorted(maps.Keys(libs)) {
		c.mkdirAll(filepath.Dir(lib)[1:])
		if err := c.copy(lib[1:], lib, 0o755); err != nil {
			return err
		}
	}
	return c.err
}

// lddRE matches the paths of ldd's output: "libc.so.6 => /lib/...so.6 (0x...)"
// and "/lib64/ld-linux-x86-64.so.2 (0x...)".
var lddRE = regexp.MustCompile(`(?m)(/\S+) \(0x[0-9a-f]+\)$`)

// requireStatic fails for a dynamically linked program: the guest has no
// libc.
func requireStatic(path string) error {
	e, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %v (install busybox-static)", path, err)
	}
	defer e.Close()
	for _, p := range e.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; the guest needs busybox-static's", path)
		}
	}
	return nil
}

// cpioWriter writes the "newc" cpio format the kernel's initramfs reader
// takes; every entry is owned by root.
type cpioWriter struct {
	w    io.Writer
	dirs map[string]bool // directories written
	ino  int
	n    int64 // bytes written, for padding
	err  error
}

const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
	sIFCHR = 0o020000
)

func (c *cpioWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) header(name string, mode uint32, size int64, rdevMajor, rdevMinor int) {
	c.ino++
	nlink := 1
	if mode&sIFDIR != 0 {
		nlink = 2
	}
	c.headerIno(name, mode, size, rdevMajor, rdevMinor, c.ino, nlink)
}

func (c *cpioWriter) headerIno(name string, mode uint32, size int64, rdevMajor, rdevMinor, ino, nlink int) {
	c.write(fmt.Appendf(nil, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0))
	c.write(append([]byte(name), 0))
	c.pad()
}

func (c *cpioWriter) dir(name string, perm uint32) {
	if c.dirs == nil {
		c.dirs = map[string]bool{}
	}
	c.dirs[name] = true
	c.header(name, sIFDIR|perm, 0, 0, 0)
}

// mkdirAll writes the directories of a relative path that are not yet in
// the archive, parents first (the kernel creates no parent).
func (c *cpioWriter) mkdirAll(name string) {
	if name == "." || c.dirs[name] {
		return
	}
	c.mkdirAll(filepath.Dir(name))
	c.dir(name, 0o755)
}

func (c *cpioWriter) node(name string, perm uint32, major, minor int) {
	c.header(name, sIFCHR|perm, 0, major, minor)
}

func (c *cpioWriter) symlink(name, target string) {
	c.header(name, sIFLNK|0o777, int64(len(target)), 0, 0)
	c.write([]byte(target))
	c.pad()
}

func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	c.header(name, sIFREG|perm, int64(len(data)), 0, 0)
	c.write(data)
	c.pad()
}

func (c *cpioWriter) copy(name, src string, perm uint32) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	c.file(name, perm, data)
	return c.err
}

// hardlinks writes the file src under every name, as hard links: the data
// follows the first name only, which the kernel's reader creates; it links
// the others to it by their common inode number.
func (c *cpioWriter) hardlinks(src string, perm uint32, names ...string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	c.ino++
	for i, name := range names {
		size := int64(0)
		if i == 0 {
			size = int64(len(data))
		}
		c.headerIno(name, sIFREG|perm, size, 0, 0, c.ino, len(names))
		if i == 0 {
			c.write(data)
			c.pad()
		}
	}
	return c.err
}

func (c *cpioWriter) trailer() {
	c.header("TRAILER!!!", 0, 0, 0, 0)
}
