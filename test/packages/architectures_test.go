//go:build linux

package packages

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/otelexecsnoop/execsnoop/internal/elfcheck"
)

// The binaries every package holds, built for its architecture.
var packageBinaries = []string{"/usr/bin/otelcol-execsnoop", "/usr/bin/execsnoop"}

// TestArchitectures: each architecture's .deb and .rpm say that
// architecture, hold the same files (paths, modes, and contents apart from
// the binaries) as the first architecture's of the same kind, and their
// binaries are static ELF executables for that architecture's machine.
func TestArchitectures(t *testing.T) {
	all := packagesUnderTest(t)
	for _, kind := range []struct {
		name string
		file func(packageFiles) string
		read func(string) (*pkgContents, error)
		arch func(pkgArch) string
	}{
		{"deb", func(p packageFiles) string { return p.deb }, readDeb, func(a pkgArch) string { return a.debian }},
		{"rpm", func(p packageFiles) string { return p.rpm }, readRPM, func(a pkgArch) string { return a.rpm }},
	} {
		t.Run(kind.name, func(t *testing.T) {
			var ref *pkgContents
			var refName string
			for _, p := range all {
				name := filepath.Base(kind.file(p))
				c, err := kind.read(kind.file(p))
				if err != nil {
					t.Fatal(err)
				}
				if want := kind.arch(p.arch); c.arch != want {
					t.Errorf("%s says architecture %q, want %q", name, c.arch, want)
				}
				for _, b := range packageBinaries {
					e, ok := c.files[b]
					if !ok || e.data == nil {
						t.Errorf("%s has no %s", name, b)
						continue
					}
					if err := elfcheck.Static(e.data, p.arch.machine); err != nil {
						t.Errorf("%s: %s %s", name, b, err)
					}
				}
				t.Logf("%s: architecture %s, %d files and directories, binaries checked for %s", name, c.arch, len(c.files), p.arch.machine)
				if ref == nil {
					ref, refName = c, name
					continue
				}
				sameFiles(t, refName, ref, name, c)
			}
		})
	}
}

// sameFiles: b holds what a holds, with the same modes, and the same bytes
// except the binaries.
func sameFiles(t *testing.T, aName string, a *pkgContents, bName string, b *pkgContents) {
	t.Helper()
	var names []string
	for n := range a.files {
		names = append(names, n)
	}
	for n := range b.files {
		if _, ok := a.files[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		ea, eb := a.files[n], b.files[n]
		switch {
		case eb == nil:
			t.Errorf("%s has %s, %s has not", aName, n, bName)
		case ea == nil:
			t.Errorf("%s has %s, %s has not", bName, n, aName)
		case ea.mode != eb.mode:
			t.Errorf("%s: mode %s in %s, %s in %s", n, ea.mode, aName, eb.mode, bName)
		case ea.sha256 != eb.sha256 && !slices.Contains(packageBinaries, n):
			t.Errorf("%s differs between %s and %s", n, aName, bName)
		}
	}
}
