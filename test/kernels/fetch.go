package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// A guest kernel: a Debian release whose cloud kernel the harness boots.
type release struct {
	Name   string   // bullseye, bookworm, trixie
	Suites []string // suites of http://deb.debian.org/debian
	// Security is the suite of http://deb.debian.org/debian-security: the
	// newest kernel of a stable release is often only there.
	Security string
}

var releases = []release{
	{Name: "bullseye", Suites: []string{"bullseye", "bullseye-updates"}, Security: "bullseye-security"},
	{Name: "bookworm", Suites: []string{"bookworm", "bookworm-updates"}, Security: "bookworm-security"},
	{Name: "trixie", Suites: []string{"trixie", "trixie-updates"}, Security: "trixie-security"},
}

const (
	mirror         = "http://deb.debian.org/debian"
	securityMirror = "http://deb.debian.org/debian-security"
	keyring        = "/usr/share/keyrings/debian-archive-keyring.gpg"
	// The metapackage that depends on the current cloud kernel of a release.
	metapackage = "linux-image-cloud-amd64"
)

// kernel is a cached, extracted guest kernel.
type kernel struct {
	Release string
	Package string // e.g. linux-image-6.1.0-41-cloud-amd64
	Version string // the package's version
	Vmlinuz string // path of the kernel image
	Modules string // path of the cpio of its guestModules
}

// fetchKernel returns the release's cloud kernel from the cache under dir,
// or downloads it first. Downloads use a private apt configuration under
// dir (its own sources, lists, archives and an empty dpkg status), so the
// machine's apt sources and state are never read or changed.
func fetchKernel(dir string, r release) (kernel, error) {
	dir, err := filepath.Abs(filepath.Join(dir, r.Name))
	if err != nil {
		return kernel{}, err
	}
	k := kernel{Release: r.Name, Vmlinuz: filepath.Join(dir, "vmlinuz"), Modules: filepath.Join(dir, "modules.cpio")}
	if meta, err := os.ReadFile(filepath.Join(dir, "package")); err == nil {
		_, errImage := os.Stat(k.Vmlinuz)
		if _, err := os.Stat(k.Modules); err == nil && errImage == nil {
			fmt.Sscan(string(meta), &k.Package, &k.Version)
			progress("%s: cached %s %s", r.Name, k.Package, k.Version)
			return k, nil
		}
	}
	if _, err := os.Stat(keyring); err != nil {
		return k, fmt.Errorf("%s: Debian's archive keyring is missing (install debian-archive-keyring): %v", r.Name, err)
	}
	aptDir := filepath.Join(dir, "apt")
	for _, d := range []string{"lists/partial", "archives/partial", "download"} {
		if err := os.MkdirAll(filepath.Join(aptDir, d), 0o755); err != nil {
			return k, err
		}
	}
	var sources strings.Builder
	for _, s := range r.Suites {
		fmt.Fprintf(&sources, "deb [arch=amd64 signed-by=%s] %s %s main\n", keyring, mirror, s)
	}
	fmt.Fprintf(&sources, "deb [arch=amd64 signed-by=%s] %s %s main\n", keyring, securityMirror, r.Security)
	files := map[string]string{
		"sources.list": sources.String(),
		"status":       "",
		"apt.conf": fmt.Sprintf(`Dir::Etc::SourceList "%[1]s/sources.list";
Dir::Etc::SourceParts "%[1]s/none";
Dir::Etc::Preferences "%[1]s/none";
Dir::Etc::PreferencesParts "%[1]s/none";
Dir::State "%[1]s";
Dir::State::Lists "%[1]s/lists";
Dir::State::status "%[1]s/status";
Dir::Cache "%[1]s";
Dir::Cache::archives "%[1]s/archives";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
Acquire::Languages "none";
APT::Sandbox::User "root";
Debug::NoLocking "true";
`, aptDir),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(aptDir, name), []byte(content), 0o644); err != nil {
			return k, err
		}
	}
	apt := func(workdir string, args ...string) ([]byte, error) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = workdir
		cmd.Env = append(os.Environ(), "APT_CONFIG="+filepath.Join(aptDir, "apt.conf"), "LC_ALL=C")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("%s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
		}
		return out, nil
	}
	progress("%s: apt-get update (private lists under %s)", r.Name, aptDir)
	if _, err := apt(aptDir, "apt-get", "update", "-q"); err != nil {
		return k, err
	}
	// The metapackage depends on the newest cloud kernel package of the
	// release (security suite included): resolve it now, never pinned.
	out, err := apt(aptDir, "apt-cache", "depends", "--important", metapackage)
	if err != nil {
		return k, err
	}
	m := regexp.MustCompile(`(?m)^\s+Depends: (linux-image-\S+-cloud-amd64)$`).FindSubmatch(out)
	if m == nil {
		return k, fmt.Errorf("%s: %s depends on no linux-image-*-cloud-amd64 package:\n%s", r.Name, metapackage, out)
	}
	k.Package = string(m[1])
	out, err = apt(aptDir, "apt-cache", "policy", k.Package)
	if err != nil {
		return k, err
	}
	if m := regexp.MustCompile(`(?m)^\s+Candidate: (\S+)$`).FindSubmatch(out); m != nil {
		k.Version = string(m[1])
	}
	progress("%s: apt-get download %s %s", r.Name, k.Package, k.Version)
	dl := filepath.Join(aptDir, "download")
	if _, err := apt(dl, "apt-get", "download", "-q", k.Package); err != nil {
		return k, err
	}
	debs, _ := filepath.Glob(filepath.Join(dl, k.Package+"_*.deb"))
	if len(debs) != 1 {
		return k, fmt.Errorf("%s: apt-get download left %d .deb files of %s in %s", r.Name, len(debs), k.Package, dl)
	}
	extracted := filepath.Join(dir, "extracted")
	os.RemoveAll(extracted)
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], extracted).CombinedOutput(); err != nil {
		return k, fmt.Errorf("dpkg-deb -x %s: %v\n%s", debs[0], err, out)
	}
	images, _ := filepath.Glob(filepath.Join(extracted, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return k, fmt.Errorf("%s: %s holds %d boot/vmlinuz-* files, want 1", r.Name, debs[0], len(images))
	}
	// Only the image and the tests' modules are kept: the harness needs no
	// module (BPF, cgroup2, tracefs, the 8250 serial console and the
	// initramfs are built in).
	if err := writeModules(extracted, dir); err != nil {
		return k, fmt.Errorf("%s: %s: %v", r.Name, debs[0], err)
	}
	if err := os.Rename(images[0], k.Vmlinuz); err != nil {
		return k, err
	}
	configs, _ := filepath.Glob(filepath.Join(extracted, "boot", "config-*"))
	if len(configs) == 1 {
		os.Rename(configs[0], filepath.Join(dir, "config"))
	}
	// The lists and the .deb are not needed again: a second run uses the
	// image alone.
	os.RemoveAll(extracted)
	os.RemoveAll(aptDir)
	if err := os.WriteFile(filepath.Join(dir, "package"), []byte(k.Package+" "+k.Version+"\n"), 0o644); err != nil {
		return k, err
	}
	return k, nil
}
