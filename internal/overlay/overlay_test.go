package overlay

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

func TestParseMountinfo(t *testing.T) {
	data, err := os.ReadFile("testdata/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	got := parseMountinfo(data)
	want := map[uint64]mount{
		unix.Mkdev(0, 61): {point: "/tmp/base/merged", upper: "/tmp/base/up per", lower: []string{"/tmp/base/lower2", "/tmp/base/lo:wer"}},
		unix.Mkdev(0, 62): {point: "/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs", upper: "/var/lib/snap/3/fs",
			lower: []string{"/var/lib/snap/2/fs", "/var/lib/snap/1/fs"}},
		unix.Mkdev(0, 64): {point: "/ro", lower: []string{"/x", "/y"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v (ext4 and a mount of a subtree left out)", got, want)
	}
}

// kernelDev is dev in the kernel's encoding, as bpf.Executable carries it.
func kernelDev(dev uint64) uint32 { return unix.Major(dev)<<20 | unix.Minor(dev) }

// fakeHost lays out an overlay's directories under a temporary "host
// root" and a fake /proc whose process 1 has a mountinfo naming them.
func fakeHost(t *testing.T) (proc, root string) {
	t.Helper()
	proc = t.TempDir()
	root = filepath.Join(proc, "1", "root")
	for _, d := range []string{"lower/bin", "upper/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"lower/bin/image", "upper/bin/dropped", "lower/bin/copied", "upper/bin/copied"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	info := "98 22 0:61 / /merged rw - overlay overlay rw,lowerdir=/lower,upperdir=/upper,workdir=/work\n"
	if err := os.WriteFile(filepath.Join(proc, "1", "mountinfo"), []byte(info), 0o644); err != nil {
		t.Fatal(err)
	}
	return proc, root
}

func TestDecide(t *testing.T) {
	proc, root := fakeHost(t)
	real := func(f string) (uint64, uint32) {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(root, f), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino, kernelDev(st.Dev)
	}
	l := New(proc)
	for _, c := range []struct {
		name, path, real string
		decided, upper   bool
	}{
		{"a lower-layer file", "/merged/bin/image", "lower/bin/image", true, false},
		{"a file written into the upper layer", "/merged/bin/dropped", "upper/bin/dropped", true, true},
		{"seen from a container whose root is the overlay", "/bin/dropped", "upper/bin/dropped", true, true},
		{"the lower file run before its copy-up", "/merged/bin/copied", "lower/bin/copied", true, false},
		{"a file since replaced: no inode matches", "/merged/bin/image", "upper/bin/copied", false, false},
	} {
		ino, dev := real(c.real)
		x := bpf.Executable{Valid: true, Path: c.path, Overlay: true, LayerUnknown: true, RealKnown: true,
			RealInode: ino, RealDev: dev, Dev: 61}
		if upper, ok := l.Layer(&x); ok != c.decided || upper != c.upper {
			t.Errorf("%s: decided %v upper %v, want %v and %v", c.name, ok, upper, c.decided, c.upper)
		}
	}
	// The kernel's own answer is kept; a device no overlay has stays undecided.
	x := bpf.Executable{Valid: true, Path: "/merged/bin/image", Overlay: true, UpperLayer: true}
	if upper, ok := l.Layer(&x); !upper || !ok {
		t.Errorf("the kernel's answer was not kept: %v %v", upper, ok)
	}
	ino, dev := real("lower/bin/image")
	x = bpf.Executable{Valid: true, Path: "/merged/bin/image", Overlay: true, LayerUnknown: true, RealKnown: true,
		RealInode: ino, RealDev: dev, Dev: 77}
	if _, ok := l.Layer(&x); ok {
		t.Errorf("decided on a device with no overlay mount: %+v", x)
	}
}
