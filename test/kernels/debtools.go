package main

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Another architecture's guest cannot take the host's busybox and tools:
// they come from that architecture's Debian packages (the host's release,
// Debian 12), downloaded with a private apt configuration and extracted
// with dpkg-deb -x into one tree, with the libraries they need.

// toolsDist is the Debian release of the guest's tools.
const toolsDist = "bookworm"

// toolPackages hold busybox, hostTools and the libraries they link.
var toolPackages = []string{
	"busybox-static", "bash", "util-linux", "libcap2-bin", "bsdutils", "coreutils", "grep",
	"libc6", "libtinfo6", "libcap2", "libcap-ng0", "libselinux1", "libpcre2-8-0", "libacl1",
	"libattr1", "libgmp10", "libsmartcols1", "libblkid1", "libmount1", "libudev1", "libsystemd0",
	"libaudit1", "libcrypt1",
}

// toolTree returns a tree (under dir) of toolPackages for the architecture,
// downloading them once.
func toolTree(dir string, a arch) (string, error) {
	dir, err := filepath.Abs(filepath.Join(dir, "tools-"+a.Debian))
	if err != nil {
		return "", err
	}
	root := filepath.Join(dir, "root")
	done := filepath.Join(dir, "packages")
	if want := strings.Join(toolPackages, " ") + "\n"; func() bool { b, err := os.ReadFile(done); return err == nil && string(b) == want }() {
		return root, nil
	}
	if _, err := os.Stat(keyring); err != nil {
		return "", fmt.Errorf("Debian's archive keyring is missing (install debian-archive-keyring): %v", err)
	}
	aptDir := filepath.Join(dir, "apt")
	os.RemoveAll(aptDir)
	var sources strings.Builder
	for _, s := range []string{toolsDist, toolsDist + "-updates"} {
		fmt.Fprintf(&sources, "deb [arch=%s signed-by=%s] %s %s main\n", a.Debian, keyring, mirror, s)
	}
	fmt.Fprintf(&sources, "deb [arch=%s signed-by=%s] %s %s-security main\n", a.Debian, keyring, securityMirror, toolsDist)
	apt, err := privateApt(aptDir, a.Debian, sources.String())
	if err != nil {
		return "", err
	}
	progress("%s tools: apt-get update and download %s (private lists under %s)", a.Debian, toolsDist, aptDir)
	if _, err := apt(aptDir, "apt-get", "update", "-q"); err != nil {
		return "", err
	}
	dl := filepath.Join(aptDir, "download")
	if _, err := apt(dl, slices.Concat([]string{"apt-get", "download", "-q"}, toolPackages)...); err != nil {
		return "", err
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	os.RemoveAll(root)
	for _, deb := range debs {
		if out, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
			return "", fmt.Errorf("dpkg-deb -x %s: %v\n%s", deb, err, out)
		}
	}
	os.RemoveAll(aptDir)
	return root, os.WriteFile(done, []byte(strings.Join(toolPackages, " ")+"\n"), 0o644)
}

// inTree resolves path (absolute in the guest) inside root, following
// symbolic links inside the tree; it returns the real file's host path.
func inTree(root, path string) (string, error) {
	for range 16 {
		host := filepath.Join(root, path)
		fi, err := os.Lstat(host)
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return host, nil
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return "", fmt.Errorf("%s: too many symbolic links", path)
}

// findTool returns where the tree holds a program named like the host's
// tool (Debian 12's packages put some under /usr, some not).
func findTool(root, tool string) (string, error) {
	for _, d := range []string{"bin", "usr/bin", "sbin", "usr/sbin"} {
		if p, err := inTree(root, filepath.Join("/", d, filepath.Base(tool))); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is in none of the %s packages %v", filepath.Base(tool), toolsDist, toolPackages)
}

// elfDeps adds to libs (guest path -> host path) the interpreter and the
// shared libraries (DT_NEEDED, recursively) of the program at host path
// prog, resolved in the tree at root's multiarch directories.
func elfDeps(root, prog string, a arch, libs map[string]string) error {
	f, err := elf.Open(prog)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return err
		}
		interp := strings.TrimRight(string(b), "\x00")
		host, err := inTree(root, interp)
		if err != nil {
			return fmt.Errorf("%s's interpreter: %v", prog, err)
		}
		libs[interp] = host
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return err
	}
	for _, lib := range needed {
		guest := ""
		for _, d := range []string{"/lib/" + a.Libdir, "/usr/lib/" + a.Libdir} {
			if _, err := inTree(root, filepath.Join(d, lib)); err == nil {
				guest = filepath.Join(d, lib)
				break
			}
		}
		if guest == "" {
			return fmt.Errorf("%s needs %s, in none of the packages %v", prog, lib, toolPackages)
		}
		if _, seen := libs[guest]; seen {
			continue
		}
		host, _ := inTree(root, guest)
		libs[guest] = host
		if err := elfDeps(root, host, a, libs); err != nil {
			return err
		}
	}
	return nil
}
