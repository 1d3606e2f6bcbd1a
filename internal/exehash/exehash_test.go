package exehash

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

func newHasher(t testing.TB, opts Options) *Hasher {
	t.Helper()
	if opts.CacheEntries == 0 {
		opts.CacheEntries = DefaultCacheEntries
	}
	if opts.MaxSize == 0 {
		opts.MaxSize = DefaultMaxSize
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// fileAt describes path as the kernel would for a process pid that ran it.
func fileAt(t testing.TB, path string, pid int) File {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return File{PID: uint32(pid), Path: path, Key: KeyOf(&st)}
}

func wait(t testing.TB, res *Result) Identity {
	t.Helper()
	select {
	case <-res.Done():
		return res.Identity()
	case <-time.After(testenv.Timeout(30 * time.Second)):
		t.Fatal("the hash never came")
		return Identity{}
	}
}

func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

// htlHashOf is the profiler's file id computed from the whole file in
// memory, independently of HTLHash's section reads.
func htlHashOf(data []byte) string {
	head := data[:min(len(data), 4096)]
	tail := data[len(data)-min(len(data), 4096):]
	in := append(append(append([]byte{}, head...), tail...), binary.BigEndian.AppendUint64(nil, uint64(len(data)))...)
	sum := sha256.Sum256(in)
	return hex.EncodeToString(sum[:16])
}

// /bin/true, read through its path (no live process): the sha256 is
// sha256sum's, the GNU build id readelf's, the htlhash the profiler's.
func TestTrue(t *testing.T) {
	path, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	h := newHasher(t, Options{})
	id := wait(t, h.Lookup(fileAt(t, path, 0)))
	if want := strings.Fields(output(t, "sha256sum", path))[0]; id.SHA256 != want || id.Missing != ReasonNone {
		t.Errorf("sha256 %q (missing %v), want sha256sum's %q", id.SHA256, id.Missing, want)
	}
	m := regexp.MustCompile(`Build ID: ([0-9a-f]+)`).FindStringSubmatch(output(t, "readelf", "-n", path))
	if m == nil {
		t.Fatalf("readelf -n %s prints no build id", path)
	}
	if id.GNU != m[1] {
		t.Errorf("GNU build id %q, want readelf's %q", id.GNU, m[1])
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := htlHashOf(data); id.HTLHash != want {
		t.Errorf("htlhash %q, want %q", id.HTLHash, want)
	}
	if id.Go != "" {
		t.Errorf("/bin/true has a Go build id %q", id.Go)
	}
}

// A Go binary has the build id go tool buildid prints.
func TestGoBuildID(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "prog")
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GO111MODULE=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	want := strings.TrimSpace(output(t, "go", "tool", "buildid", bin))
	id := wait(t, newHasher(t, Options{}).Lookup(fileAt(t, bin, 0)))
	if id.Go != want || want == "" {
		t.Errorf("Go build id %q, want go tool buildid's %q", id.Go, want)
	}
	data, _ := os.ReadFile(bin)
	if sum := sha256.Sum256(data); id.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 %q of the Go binary is wrong", id.SHA256)
	}
}

// 1000 lookups of one file hash it once: the rest are cache hits.
func TestCacheHashesOnce(t *testing.T) {
	h := newHasher(t, Options{})
	f := fileAt(t, "/bin/true", 0)
	first := wait(t, h.Lookup(f))
	for range 999 {
		if id := wait(t, h.Lookup(f)); id != first {
			t.Fatalf("a cached lookup gave %+v, the first %+v", id, first)
		}
	}
	if s := h.Stats(); s.Hashed != 1 || s.Hits != 999 || s.Lookups != 1000 {
		t.Errorf("stats %+v, want 1 hashed, 999 hits of 1000 lookups", s)
	}
}

// The cache is bounded: past CacheEntries the least recently used goes.
func TestCacheBounded(t *testing.T) {
	h := newHasher(t, Options{CacheEntries: 2})
	dir := t.TempDir()
	var files []File
	for _, name := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o755); err != nil {
			t.Fatal(err)
		}
		files = append(files, fileAt(t, p, 0))
		wait(t, h.Lookup(files[len(files)-1]))
	}
	wait(t, h.Lookup(files[0])) // evicted: hashed again
	if s := h.Stats(); s.Hashed != 4 || s.Hits != 0 || h.cache.len() != 2 {
		t.Errorf("stats %+v, %d entries; want 4 hashed, no hit, 2 entries", s, h.cache.len())
	}
}

// Over max_size: no sha256 (too_large), but the cheap ids are given.
func TestTooLarge(t *testing.T) {
	f := fileAt(t, "/bin/true", 0)
	id := wait(t, newHasher(t, Options{MaxSize: 1024}).Lookup(f))
	if id.Missing != TooLarge || id.SHA256 != "" || id.HTLHash == "" || id.GNU == "" {
		t.Errorf("identity %+v, want too_large with the htlhash and build id", id)
	}
}

// A live process's file is read through /proc/PID/exe: after its file is
// deleted and another put under its name, the hash is still the first's.
func TestLiveProcessDeletedAndReplaced(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	testenv.CopyFile(t, "/bin/sleep", bin, 0o755)
	cmd := exec.Command(bin, "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	f := fileAt(t, bin, cmd.Process.Pid)
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	testenv.CopyFile(t, "/bin/true", bin, 0o755)
	id := wait(t, newHasher(t, Options{}).Lookup(f))
	if want := testenv.FileSHA256(t, "/bin/sleep"); id.SHA256 != want {
		t.Errorf("sha256 %q (missing %v), want /bin/sleep's %q", id.SHA256, id.Missing, want)
	}
}

// Without the process, a path that names another file now is changed,
// and a path that names nothing is gone.
func TestChangedAndGone(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	testenv.CopyFile(t, "/bin/true", bin, 0o755)
	f := fileAt(t, bin, 0)
	h := newHasher(t, Options{})
	os.Remove(bin)
	if id := wait(t, h.Lookup(f)); id.Missing != Gone || id.SHA256 != "" {
		t.Errorf("removed: %+v, want gone", id)
	}
	testenv.CopyFile(t, "/bin/true", bin, 0o755)
	if id := wait(t, h.Lookup(f)); id.Missing != Changed || id.SHA256 != "" {
		t.Errorf("replaced: %+v, want changed", id)
	}
	f.NoPath = true
	if id := wait(t, h.Lookup(f)); id.Missing != Gone {
		t.Errorf("memfd or deleted, no process: %+v, want gone", id)
	}
	if s := h.Stats(); s.Hits != 0 || s.Hashed != 0 {
		t.Errorf("stats %+v: failures must not be cached", s)
	}
}

func TestOptionsValidated(t *testing.T) {
	for _, o := range []Options{{MaxSize: -1, CacheEntries: 1}, {CacheEntries: 0}, {CacheEntries: MaxCacheEntries + 1}} {
		if h, err := New(o); err == nil {
			h.Close()
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestCanReadOthers(t *testing.T) {
	ok, err := CanReadOthers()
	if err != nil {
		t.Fatal(err)
	}
	if root := os.Geteuid() == 0; ok != root {
		t.Logf("CAP_SYS_PTRACE %v as euid %d", ok, os.Geteuid())
	}
	status := filepath.Join(t.TempDir(), "status")
	os.WriteFile(status, []byte("Name:\tx\nCapEff:\t0000000000080000\n"), 0o644)
	if ok, err := hasCap(status, capSysPtrace); !ok || err != nil {
		t.Errorf("CapEff with bit 19: %v %v", ok, err)
	}
	os.WriteFile(status, []byte("CapEff:\t00000000000000c0\n"), 0o644)
	if ok, _ := hasCap(status, capSysPtrace); ok {
		t.Error("CapEff without bit 19 has CAP_SYS_PTRACE")
	}
}

// A process gone before its file was read, in a container (here: a mount
// namespace of its own with a tmpfs over a directory): the file is read
// through its parent's root, and a look-alike at the same path on the
// host is not taken for it.
func TestGoneProcessReadThroughParentRoot(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	// The parent: mounts, runs the copy (which exits at once), then waits
	// on stdin so that its root stays to be read.
	sh := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs none "$1" && cp /bin/true "$1/prog" && "$1/prog" && echo ready && read _`, "sh", dir)
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sh.Stderr = os.Stderr
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); sh.Wait() })
	line := make([]byte, len("ready\n"))
	if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "ready\n" {
		t.Fatalf("the namespace's shell printed %q (%v), want ready", line, err)
	}
	// unshare execs sh: the shell is the process unshare started.
	f := fileAt(t, fmt.Sprintf("/proc/%d/root%s", sh.Process.Pid, bin), 0)
	f.Path = bin
	testenv.CopyFile(t, "/bin/sleep", bin, 0o755) // the host's look-alike
	h := newHasher(t, Options{})

	if id := wait(t, h.Lookup(f)); id.Missing != Changed {
		t.Errorf("without the parent: %+v, want changed (the host's file is another)", id)
	}
	f.PPID = uint32(sh.Process.Pid)
	id := wait(t, h.Lookup(f))
	if want := testenv.FileSHA256(t, "/bin/true"); id.SHA256 != want || id.Missing != ReasonNone {
		t.Errorf("through the parent's root: sha256 %q (missing %v), want /bin/true's %q", id.SHA256, id.Missing, want)
	}
}
