package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The archive unpacks with GNU cpio as the kernel unpacks it: files with
// their data, hard links sharing one inode, symlinks, nested directories.
func TestCPIOWriter(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatalf("cpio (Debian's cpio package, from make deps): %v", err)
	}
	src := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho linked\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	w := &cpioWriter{w: &archive}
	w.dir("bin", 0o755)
	w.mkdirAll("lib/x86_64-linux-gnu")
	if err := w.hardlinks(src, 0o755, "bin/a", "bin/b", "bin/c"); err != nil {
		t.Fatal(err)
	}
	w.file("lib/x86_64-linux-gnu/odd", 0o644, []byte("12345")) // needs padding
	w.symlink("bin/sh", "a")
	w.trailer()
	if w.err != nil {
		t.Fatal(w.err)
	}

	dir := t.TempDir()
	cmd := exec.Command("cpio", "-id", "--quiet")
	cmd.Dir = dir
	cmd.Stdin = &archive
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v\n%s", err, out)
	}
	a, err := os.Stat(filepath.Join(dir, "bin/a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bin/b", "bin/c"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !os.SameFile(a, fi) {
			t.Errorf("%s is not a hard link of bin/a: %v", name, err)
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, "bin/c")); err != nil || string(data) != "#!/bin/sh\necho linked\n" {
		t.Errorf("bin/c: %q %v", data, err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "lib/x86_64-linux-gnu/odd")); err != nil || string(data) != "12345" {
		t.Errorf("odd: %q %v", data, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || target != "a" {
		t.Errorf("bin/sh -> %q %v", target, err)
	}
	if a.Mode().Perm() != 0o755 {
		t.Errorf("bin/a mode %v", a.Mode())
	}
}
