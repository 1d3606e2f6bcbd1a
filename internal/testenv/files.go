package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// FileSHA256 is the file's SHA-256 in lowercase hex, as sha256sum prints it.
func FileSHA256(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// CopyFile copies src to dst, a new file, with mode.
func CopyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// Overlay mounts an overlayfs on base/merged with base/lower, base/upper
// and base/work, all on a tmpfs of its own (an upper layer cannot be on
// overlayfs), and unmounts both at the end. fillLower writes the lower
// layer's files before the mount; files written through merged later are
// in the upper layer. It skips the test on a kernel without overlayfs.
func Overlay(t testing.TB, fillLower func(lower string)) (base, merged string) {
	t.Helper()
	RequireRoot(t)
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", base, "tmpfs", 0, ""); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(base, unix.MNT_DETACH) })
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fillLower(filepath.Join(base, "lower"))
	merged = filepath.Join(base, "merged")
	opts := "lowerdir=" + base + "/lower,upperdir=" + base + "/upper,workdir=" + base + "/work"
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("overlayfs: %v", err) // a kernel without it
	}
	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })
	return base, merged
}

// RootOwnedCopy copies src to dst, a new file owned by root, with mode,
// set-id bits included (they are set after the chown, which clears them).
func RootOwnedCopy(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	CopyFile(t, src, dst, 0o755)
	if err := os.Chown(dst, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, mode); err != nil {
		t.Fatal(err)
	}
}
