package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/otelexecsnoop/execsnoop/internal/kimage"
)

// A guest kernel: a Debian release's cloud kernel for one architecture.
type release struct {
	Name   string   // bullseye, bullseye-arm64...
	Dist   string   // the Debian release: bullseye, bookworm, trixie
	Arch   arch     // amd64, arm64
	Suites []string // suites of http://deb.debian.org/debian
	// Security is the suite of http://deb.debian.org/debian-security: the
	// newest kernel of a stable release is often only there.
	Security string
	// BPFRun and CLIRun are the -test.run of the guest's tests when
	// -bpf-run and -cli-run are not given ("": all of them).
	BPFRun, CLIRun string
	// Collector: this guest also runs the image's collector when
	// -collector-image is given (one guest: it adds ~40 MiB to the initrd).
	Collector bool
}

// runOf is the -test.run of exactly these top-level tests.
func runOf(tests ...[]string) string { return "^(" + strings.Join(slices.Concat(tests...), "|") + ")$" }

// TCG emulates arm64 too slowly here for every test in three guests (each
// test loads the probe, 5-10 s), so the arm64 kernels have selections.
// arm64Core are the bpf tests where the architectures differ: syscall
// numbers and wrappers, the user registers a failed exec's argv and
// execveat's arguments come from, what start_thread has reset by
// sched_process_exec, the credentials, the exec ids and the executable's
// path; bookworm-arm64, inside the range, runs only these, and
// arm64CoreCLI of the CLI's: the records' fields, argv and signals, the
// overlay layer and the one line of a kernel without BTF.
var (
	arm64Core = []string{"TestArgvExact", "TestExecveat", "TestFailedExecs", "TestFailedExecHooks", "TestExitStatus",
		"TestExecCredentials", "TestExecImages", "TestExecutableFile", "TestExecutableRelativeAndSymlink",
		"TestExecutableScript", "TestFailedExecHasNoExecutable"}
	arm64CoreCLI = []string{"TestJSON", "TestJSONArgvAndSignal", "TestTable", "TestKernelWithoutBTF", "TestUsageErrors",
		"TestJSONOverlayUpperLayer"}
)

// The ends of the range (5.10, 6.12) run arm64Ends and arm64EndsCLI,
// everything but the slowest tests, which test no architecture
// difference (pid reuse, ring-buffer overload, the trace context at every
// alignment and over the perf buffer, storage I/O, which skips in a guest
// anyway, the CLI's minute-long lost-events storm), and share the
// 20-40 s tests between them: bullseye-arm64 the ring buffer's draining
// and idle wake-up and the refused OTLP endpoint, trixie-arm64 the kernel
// filters and the dead and late OTLP endpoints.
var (
	arm64Ends = slices.Concat(arm64Core, []string{"TestDecodeExec", "TestDecodeMalformed", "TestKilledBySignal",
		"TestWallClock", "TestArgsBudget", "TestExecImageAcrossProbes", "TestExecutableMemfd", "TestExecutableUnlinked",
		"TestExecutableOverlayLayer", "TestPathDepthCut", "TestWithoutTracefs", "TestCloseIsIdempotent",
		"TestBadOptions", "TestRusageAtExit", "TestExitTracepointSignature", "TestExecTerminal", "TestExecSession",
		"TestExecVPID", "TestTraceContextFromEnv", "TestTraceStateIsCut", "TestTraceContextBudget",
		"TestTraceContextSmallBudget", "TestTraceContextOff"})
	arm64EndsCLI = slices.Concat(arm64CoreCLI, []string{"TestJSONEqualsTheReceiver", "TestTableFormat",
		"TestTableQuoteRoundTrips", "TestJSONEqualsTheMapping", "TestOTLPAttributesEqualTheMapping",
		"TestExpandShortFlags", "TestLineFilterKeepsExitsOfMatchedExecs", "TestParseFlags", "TestSignalsEndCleanly",
		"TestMissingPrivileges", "TestOwnPIDNamespace", "TestOTLP", "TestFlagsMirrorReceiverSettings",
		"TestFlagDefaultsDifferOnlyOnPurpose", "TestTableWithoutFailedExecs", "TestTableQuoted",
		"TestTableExitsAndPrefixColumns"})
)

var releases = []release{
	{Name: "bullseye", Dist: "bullseye", Arch: amd64, Suites: []string{"bullseye", "bullseye-updates"}, Security: "bullseye-security"},
	{Name: "bookworm", Dist: "bookworm", Arch: amd64, Suites: []string{"bookworm", "bookworm-updates"}, Security: "bookworm-security"},
	{Name: "trixie", Dist: "trixie", Arch: amd64, Suites: []string{"trixie", "trixie-updates"}, Security: "trixie-security"},
	// bullseye's security suite has no arm64 cloud kernel build on the
	// mirror: its main suite's is taken.
	{Name: "bullseye-arm64", Dist: "bullseye", Arch: arm64, Suites: []string{"bullseye", "bullseye-updates"},
		BPFRun: runOf(arm64Ends, []string{"TestStopDrainsTheBuffer", "TestIdleRingBufferWaitsForData"}),
		CLIRun: runOf(arm64EndsCLI, []string{"TestOTLPRefused"})},
	{Name: "bookworm-arm64", Dist: "bookworm", Arch: arm64, Suites: []string{"bookworm", "bookworm-updates"}, Security: "bookworm-security",
		BPFRun: runOf(arm64Core), CLIRun: runOf(arm64CoreCLI)},
	{Name: "trixie-arm64", Dist: "trixie", Arch: arm64, Suites: []string{"trixie", "trixie-updates"}, Security: "trixie-security",
		BPFRun: runOf(arm64Ends, []string{"TestKernelFilters"}),
		CLIRun: runOf(arm64EndsCLI, []string{"TestOTLPDeadEndpoint", "TestOTLPLateEndpoint"}), Collector: true},
}

const (
	mirror         = "http://deb.debian.org/debian"
	securityMirror = "http://deb.debian.org/debian-security"
	keyring        = "/usr/share/keyrings/debian-archive-keyring.gpg"
)

// kernel is a cached, extracted guest kernel.
type kernel struct {
	Release string
	Arch    arch
	Package string // e.g. linux-image-6.1.0-41-cloud-amd64
	Version string // the package's version
	Vmlinuz string // path of the image QEMU boots (arm64: the unwrapped Image)
	Modules string // path of the cpio of its guestModules
	// The release's test selection (-test.run; "" all).
	BPFRun, CLIRun string
	Collector      bool // see release.Collector
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
	image := "vmlinuz"
	if r.Arch.Debian == "arm64" {
		image = "Image"
	}
	k := kernel{Release: r.Name, Arch: r.Arch, Vmlinuz: filepath.Join(dir, image), Modules: filepath.Join(dir, "modules.cpio"),
		BPFRun: r.BPFRun, CLIRun: r.CLIRun, Collector: r.Collector}
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
	var sources strings.Builder
	for _, s := range r.Suites {
		fmt.Fprintf(&sources, "deb [arch=%s signed-by=%s] %s %s main\n", r.Arch.Debian, keyring, mirror, s)
	}
	if r.Security != "" {
		fmt.Fprintf(&sources, "deb [arch=%s signed-by=%s] %s %s main\n", r.Arch.Debian, keyring, securityMirror, r.Security)
	}
	apt, err := privateApt(aptDir, r.Arch.Debian, sources.String())
	if err != nil {
		return k, err
	}
	progress("%s: apt-get update (private lists under %s)", r.Name, aptDir)
	if _, err := apt(aptDir, "apt-get", "update", "-q"); err != nil {
		return k, err
	}
	// The metapackage depends on the newest cloud kernel package of the
	// release (security suite included): resolve it now, never pinned.
	metapackage := "linux-image-cloud-" + r.Arch.Debian
	out, err := apt(aptDir, "apt-cache", "depends", "--important", metapackage)
	if err != nil {
		return k, err
	}
	m := regexp.MustCompile(`(?m)^\s+Depends: (linux-image-\S+-cloud-` + r.Arch.Debian + `)$`).FindSubmatch(out)
	if m == nil {
		return k, fmt.Errorf("%s: %s depends on no linux-image-*-cloud-%s package:\n%s", r.Name, metapackage, r.Arch.Debian, out)
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
	if err := bootImage(images[0], k.Vmlinuz, r.Arch); err != nil {
		return k, fmt.Errorf("%s: %v", r.Name, err)
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

// bootImage moves the package's vmlinuz to path, as the image QEMU boots:
// amd64's bzImage as it is; arm64's vmlinuz is an EFI zboot image, which
// qemu-system-aarch64 -kernel cannot boot, so the Image inside it.
func bootImage(vmlinuz, path string, a arch) error {
	if a.Debian != "arm64" {
		return os.Rename(vmlinuz, path)
	}
	img, err := os.ReadFile(vmlinuz)
	if err != nil {
		return err
	}
	if img, err = kimage.Unwrap(img); err != nil {
		return fmt.Errorf("%s: %v", vmlinuz, err)
	}
	// arm64's Image header (Documentation/arch/arm64/booting.rst): the
	// magic "ARM\x64" at 56.
	if len(img) < 64 || string(img[56:60]) != "ARM\x64" {
		return fmt.Errorf("%s does not hold an arm64 Image", vmlinuz)
	}
	return os.WriteFile(path, img, 0o644)
}

// privateApt writes an apt configuration under aptDir (its own sources,
// lists, archives and an empty dpkg status, for the Debian architecture
// debArch) and returns a runner of apt commands that use it.
func privateApt(aptDir, debArch, sources string) (func(workdir string, args ...string) ([]byte, error), error) {
	for _, d := range []string{"lists/partial", "archives/partial", "download"} {
		if err := os.MkdirAll(filepath.Join(aptDir, d), 0o755); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"sources.list": sources,
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
APT::Architecture "%[2]s";
APT::Architectures { "%[2]s"; };
Acquire::Languages "none";
APT::Sandbox::User "root";
Debug::NoLocking "true";
`, aptDir, debArch),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(aptDir, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	return func(workdir string, args ...string) ([]byte, error) {
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
	}, nil
}
