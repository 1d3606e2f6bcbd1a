//go:build linux

// Package packages tests the .deb and .rpm that `make packages` builds:
// lintian and rpmlint, the same files and each architecture's binaries
// (TestArchitectures), then a Debian 12 VM under QEMU in which the .deb is
// installed with apt, run by systemd, restarted, upgraded, broken, removed
// and purged (guest.sh). `make test-packages` builds the packages and runs
// this test with PACKAGES_DIR and PACKAGES_VERSION set.
package packages

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
)

// rootfsVersion names the cached guest in bin/packages-vm; change it when
// mkrootfs.sh changes so that the next run rebuilds the guest.
const rootfsVersion = "bookworm-2"

// The capabilities the unit grants, as in /proc/PID/status:
// CAP_DAC_READ_SEARCH (2), CAP_SYS_PTRACE (19, for executable hashing),
// CAP_PERFMON (38), CAP_BPF (39).
const wantCaps = 1<<2 | 1<<19 | 1<<38 | 1<<39

// The exposure score `systemd-analyze security` gave the unit under
// Debian 12's systemd 252 when it was written (1.9), plus the 0.5 that
// executable hashing added (CAP_SYS_PTRACE 0.3, PrivateTmp=no 0.2,
// ProtectHome=read-only 0.1: 2.1 -> 2.6 with --offline=true on the unit
// file); a change to the unit that exposes more fails the test.
const maxExposure = 2.4

// An architecture of the packages: Debian's name (nfpm's, GOARCH), the
// .rpm's and the ELF machine of the binaries inside.
type pkgArch struct {
	debian, rpm string
	machine     elf.Machine
}

var pkgArches = map[string]pkgArch{
	"amd64": {"amd64", "x86_64", elf.EM_X86_64},
	"arm64": {"arm64", "aarch64", elf.EM_AARCH64},
}

type packageFiles struct {
	arch                  pkgArch
	deb, previousDeb, rpm string
}

// packagesUnderTest: one set per architecture of PACKAGES_ARCHES (the
// Makefile's PKG_ARCHES), in that order.
func packagesUnderTest(t *testing.T) []packageFiles {
	dir, version := os.Getenv("PACKAGES_DIR"), os.Getenv("PACKAGES_VERSION")
	if dir == "" || version == "" {
		t.Skip("PACKAGES_DIR/PACKAGES_VERSION not set: `make test-packages` builds the packages and runs this test")
	}
	names := strings.Fields(os.Getenv("PACKAGES_ARCHES"))
	if len(names) == 0 {
		t.Fatal("PACKAGES_ARCHES is empty: `make test-packages` sets it to the Makefile's PKG_ARCHES")
	}
	var all []packageFiles
	for _, name := range names {
		a, ok := pkgArches[name]
		if !ok {
			t.Fatalf("PACKAGES_ARCHES names %q, which this test does not know (its .rpm name and ELF machine): add it to pkgArches", name)
		}
		p := packageFiles{
			arch:        a,
			deb:         filepath.Join(dir, fmt.Sprintf("otelcol-execsnoop_%s-1_%s.deb", version, a.debian)),
			previousDeb: filepath.Join(dir, fmt.Sprintf("otelcol-execsnoop_%s-0_%s.deb", version, a.debian)),
			rpm:         filepath.Join(dir, fmt.Sprintf("otelcol-execsnoop-%s-1.%s.rpm", version, a.rpm)),
		}
		for _, f := range []string{p.deb, p.previousDeb, p.rpm} {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("%v: run `make test-packages`, which builds releases 0 and 1", err)
			}
		}
		all = append(all, p)
	}
	return all
}

// amd64 is the guest's architecture in TestInVM.
func amd64Packages(t *testing.T) packageFiles {
	for _, p := range packagesUnderTest(t) {
		if p.arch.debian == "amd64" {
			return p
		}
	}
	t.Fatal("PACKAGES_ARCHES has no amd64, the VM's architecture")
	return packageFiles{}
}

func TestLint(t *testing.T) {
	for _, p := range packagesUnderTest(t) {
		t.Run("lintian/"+p.arch.debian, func(t *testing.T) {
			out, err := exec.Command("lintian", "--fail-on", "error", "--display-info", p.deb).CombinedOutput()
			t.Logf("lintian %s:\n%s", filepath.Base(p.deb), out)
			if err != nil {
				t.Fatalf("lintian reports errors: %v", err)
			}
		})
		t.Run("rpmlint/"+p.arch.rpm, func(t *testing.T) {
			// Sandboxed: see rpmlint.sh.
			out, _ := exec.Command("./rpmlint.sh", p.rpm, "../../deploy/packages/lint/rpmlint.toml").CombinedOutput()
			t.Logf("rpmlint %s:\n%s", filepath.Base(p.rpm), out)
			m := regexp.MustCompile(`(\d+) errors?, (\d+) warnings?`).FindSubmatch(out)
			if m == nil {
				t.Fatal("no summary line in rpmlint's output")
			}
			if string(m[1]) != "0" {
				t.Fatalf("rpmlint reports %s errors", m[1])
			}
		})
	}
}

func TestInVM(t *testing.T) {
	p := amd64Packages(t)
	if os.Geteuid() != 0 {
		t.Fatal("the guest is built with mmdebstrap, which needs root here: run `make test-packages` as root")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	guest := guestImage(t, filepath.Join(root, "bin", "packages-vm", rootfsVersion))

	// The test disk: the packages, the driver script, a sink (the new
	// collector binary, run from the disk so it outlives the package) and
	// the argv of the exec to trace, NUL-separated.
	marker := fmt.Sprintf("argv-marker-%d", time.Now().UnixNano())
	argv := []string{marker, "two words", "", "quote\"d 'and' $dollar", "tab\there", "trailing", ""}
	in := t.TempDir()
	copyFile(t, p.previousDeb, filepath.Join(in, "previous.deb"))
	copyFile(t, p.deb, filepath.Join(in, "new.deb"))
	copyFile(t, filepath.Join(root, "bin", "pkg", "amd64", "otelcol-execsnoop"), filepath.Join(in, "otelcol-execsnoop"))
	copyFile(t, "guest.sh", filepath.Join(in, "run.sh"))
	copyFile(t, "sink.yaml", filepath.Join(in, "sink.yaml"))
	writeFile(t, filepath.Join(in, "argv"), strings.Join(argv, "\x00")+"\x00")
	writeFile(t, filepath.Join(in, "marker"), marker+"\n")
	disk := filepath.Join(t.TempDir(), "test.ext4")
	run(t, "mkfs.ext4", "-q", "-F", "-L", "vmtest", "-d", in, disk, "1G")

	start := time.Now()
	serial := bootGuest(t, guest, disk, 40*time.Minute)
	t.Logf("guest ran for %s", time.Since(start).Round(time.Second))
	rc := regexp.MustCompile(`VMTEST-DONE rc=(\d+)`).FindStringSubmatch(serial)
	if rc == nil {
		t.Fatal("the guest powered off without finishing its test script (serial log above)")
	}

	out := filepath.Join(t.TempDir(), "out")
	run(t, "debugfs", "-R", "rdump /out "+filepath.Dir(out), disk)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Errorf("the guest wrote no %s: %v", name, err)
		}
		return strings.TrimSpace(string(b))
	}
	if rc[1] != "0" {
		t.Errorf("the guest's script exited %s", rc[1])
	}
	if s, err := os.ReadFile(filepath.Join(out, "timeouts")); err == nil {
		t.Errorf("the guest timed out waiting for:\n%s", s)
	}
	t.Logf("guest kernel %s", read("uname"))

	t.Run("installs with apt and starts on its own", func(t *testing.T) {
		if rc := read("install-previous.rc"); rc != "0" {
			t.Errorf("apt-get install exited %s:\n%s", rc, read("install-previous.log"))
		}
		if e := read("enabled"); e != "enabled" {
			t.Errorf("systemctl is-enabled: %s", e)
		}
		show := props(read("installed.show"))
		if show["ActiveState"] != "active" || show["SubState"] != "running" {
			t.Errorf("service %s/%s after install", show["ActiveState"], show["SubState"])
		}
	})

	t.Run("runs as the system user with only its capabilities", func(t *testing.T) {
		for _, which := range []string{"installed", "upgraded"} {
			status := props(strings.ReplaceAll(read(which+".status"), ":\t", "="))
			pw := strings.Split(read("passwd"), ":")
			if len(pw) < 7 {
				t.Fatalf("no otelcol-execsnoop user: %q", read("passwd"))
			}
			if uid, _ := strconv.Atoi(pw[2]); uid == 0 || uid >= 1000 || pw[6] != "/usr/sbin/nologin" {
				t.Errorf("user %q: want a system uid (1-999) and no login shell", read("passwd"))
			}
			if ids := strings.Fields(status["Uid"]); len(ids) != 4 || ids[0] != pw[2] || ids[1] != pw[2] || ids[2] != pw[2] {
				t.Errorf("%s: Uid %q, want %s everywhere", which, status["Uid"], pw[2])
			}
			for _, c := range []string{"CapEff", "CapPrm", "CapAmb", "CapBnd"} {
				v, err := strconv.ParseUint(status[c], 16, 64)
				if err != nil || v != wantCaps {
					t.Errorf("%s: %s %q, want %016x (CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH CAP_SYS_PTRACE)", which, c, status[c], wantCaps)
				}
			}
			if status["NoNewPrivs"] != "1" || status["Seccomp"] != "2" {
				t.Errorf("%s: NoNewPrivs %q Seccomp %q, want 1 and 2 (filter)", which, status["NoNewPrivs"], status["Seccomp"])
			}
		}
		if s := read("statedir"); s != "otelcol-execsnoop:otelcol-execsnoop 750" {
			t.Errorf("/var/lib/otelcol-execsnoop: %s", s)
		}
	})

	t.Run("GOMEMLIMIT follows MemoryMax", func(t *testing.T) {
		max, err := strconv.ParseInt(read("installed.memory.max"), 10, 64)
		if err != nil {
			t.Fatalf("memory.max: %v", err)
		}
		env := props(read("installed.environ"))
		if want := strconv.FormatInt(max/10*8, 10); env["GOMEMLIMIT"] != want {
			t.Errorf("GOMEMLIMIT=%q with memory.max %d, want %s", env["GOMEMLIMIT"], max, want)
		}
	})

	t.Run("traces an exec with its exact argv to the sink", func(t *testing.T) {
		want := append([]string{"/bin/true"}, argv...)
		var got [][]string
		for _, lr := range collectortest.LogRecords(filepath.Join(out, "sink-1.json")) {
			if lr.Attributes().AsRaw()["process.executable.path"] == nil {
				continue
			}
			args := commandArgs(lr)
			if len(args) > 1 && args[1] == marker {
				got = append(got, args)
			}
		}
		if len(got) == 0 {
			t.Fatal("no record of the marker exec in the sink")
		}
		if fmt.Sprintf("%q", got[0]) != fmt.Sprintf("%q", want) {
			t.Errorf("argv %q, want %q", got[0], want)
		}
	})

	t.Run("systemctl restart loses no queued record", func(t *testing.T) {
		if read("restart.invocation") != "new" {
			t.Error("systemctl restart did not start a new run of the service")
		}
		seen := map[string]bool{}
		for _, lr := range collectortest.LogRecords(filepath.Join(out, "sink-2.json")) {
			if args := commandArgs(lr); len(args) == 2 && strings.HasPrefix(args[1], "queued-across-restart-") {
				seen[args[1]] = true
			}
		}
		if len(seen) != 20 {
			t.Errorf("%d of the 20 execs made while the sink was down arrived after the restart", len(seen))
		}
		if j, err := os.ReadFile(filepath.Join(out, "queue.journal")); err == nil {
			t.Errorf("the guest gave up waiting for the 20 records after the restart; the journal of the service and the sink from the restart on:\n%s", j)
		}
	})

	t.Run("upgrade keeps a changed config", func(t *testing.T) {
		if rc := read("upgrade.rc"); rc != "0" {
			t.Errorf("apt-get install of the new release exited %s:\n%s", rc, read("upgrade.log"))
		}
		if v := read("upgrade.version"); !strings.HasSuffix(v, "-1") {
			t.Errorf("version after the upgrade: %s", v)
		}
		if !strings.Contains(read("upgrade.config.yaml"), "changed by the package test") {
			t.Error("the upgrade replaced the changed /etc/otelcol-execsnoop/config.yaml")
		}
		if e := read("upgrade.etc"); e != "config.yaml" {
			t.Errorf("/etc/otelcol-execsnoop after the upgrade: %q, want only config.yaml", e)
		}
		if read("upgrade.invocation") != "new" {
			t.Error("the upgrade did not restart the service")
		}
	})

	t.Run("a config error is one line naming the field, not restarted", func(t *testing.T) {
		show := props(read("bad.show"))
		if show["ActiveState"] != "failed" || show["ExecMainStatus"] != "78" || show["NRestarts"] != "0" {
			t.Errorf("after a config error: ActiveState=%s ExecMainStatus=%s NRestarts=%s, want failed, 78 (EX_CONFIG), 0",
				show["ActiveState"], show["ExecMainStatus"], show["NRestarts"])
		}
		for _, f := range []string{"bad.status", "bad.journal"} {
			var lines []string
			for _, l := range strings.Split(read(f), "\n") {
				if strings.Contains(l, "invalid configuration") || strings.Contains(l, "no_such_field") {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 || !strings.Contains(lines[0], "no_such_field") || !strings.Contains(lines[0], `"execsnoop"`) {
				t.Errorf("%s: want one line naming the field no_such_field of the execsnoop receiver, got %q in:\n%s", f, lines, read(f))
			}
		}
		t.Logf("systemctl status:\n%s", read("bad.status"))
	})

	t.Run("a missing kernel feature is one line naming it, retried until the start limit", func(t *testing.T) {
		limits := props(read("nobtf.limits"))
		burst, err1 := strconv.Atoi(limits["StartLimitBurst"])
		restartUsec, err2 := strconv.ParseInt(limits["RestartUSec"], 10, 64)
		if err1 != nil || err2 != nil || burst < 1 {
			t.Fatalf("the unit's restart settings: %q", read("nobtf.limits"))
		}
		restartSec := time.Duration(restartUsec) * time.Microsecond
		t.Logf("unit: StartLimitBurst=%d StartLimitIntervalUSec=%sus RestartUSec=%s", burst, limits["StartLimitIntervalUSec"], restartSec)
		show := props(read("nobtf.show"))
		// systemd 252 keeps the last attempt's Result (exit-code) when the
		// start limit stops an automatic restart.
		t.Logf("without BTF: ActiveState=%s Result=%s NRestarts=%s ExecMainStatus=%s",
			show["ActiveState"], show["Result"], show["NRestarts"], show["ExecMainStatus"])
		if show["ActiveState"] != "failed" || show["ExecMainStatus"] == "78" || show["ExecMainStatus"] == "0" {
			t.Errorf("without BTF: ActiveState=%s ExecMainStatus=%s, want failed and a failure other than 78 (a config error)",
				show["ActiveState"], show["ExecMainStatus"])
		}
		manual := props(read("nobtf.manual.show"))
		t.Logf("systemctl start while the limit holds: exit %s, then ActiveState=%s Result=%s NRestarts=%s:\n%s",
			read("nobtf.manual.rc"), manual["ActiveState"], manual["Result"], manual["NRestarts"], read("nobtf.manual.log"))
		if read("nobtf.manual.rc") == "0" || manual["ActiveState"] != "failed" || manual["NRestarts"] != show["NRestarts"] {
			t.Errorf("a manual start within the limit: exit %s, ActiveState=%s NRestarts=%s, want refused (non-zero), failed, still %s",
				read("nobtf.manual.rc"), manual["ActiveState"], manual["NRestarts"], show["NRestarts"])
		}
		// The journal (journalctl -o short-unix -u): systemd's lines about
		// the unit and the service's own output, where the collector
		// reports a failed start with one "Error: ..." line (and the same
		// text in its structured "Failed to start component" record).
		var starts []float64
		var missing []string
		limitHit, structured := 0, 0
		for _, l := range strings.Split(read("nobtf.journal"), "\n") {
			ts, msg, _ := strings.Cut(l, " ")
			at, _ := strconv.ParseFloat(ts, 64)
			switch {
			case strings.Contains(msg, "systemd[1]: Started otelcol-execsnoop.service"):
				starts = append(starts, at)
			case strings.Contains(msg, "systemd[1]: otelcol-execsnoop.service: Start request repeated too quickly"):
				limitHit++
			case strings.Contains(msg, "]: Error: ") && strings.Contains(msg, "BTF"):
				missing = append(missing, msg)
			case strings.Contains(msg, "Failed to start component") && strings.Contains(msg, "BTF"):
				structured++
			case strings.Contains(msg, "BTF"):
				t.Errorf("a line about BTF that is neither the error line nor the structured record: %s", msg)
			}
		}
		t.Logf("%d structured log records about BTF for %d starts", structured, len(starts))
		// Refused twice: the automatic restart after the last failure, and
		// the manual start.
		if len(starts) != burst || limitHit != 2 {
			t.Errorf("%d starts and %d \"Start request repeated too quickly\", want %d (StartLimitBurst) and 2", len(starts), limitHit, burst)
		}
		for i := 1; i < len(starts); i++ {
			if gap := time.Duration((starts[i] - starts[i-1]) * float64(time.Second)); gap < restartSec {
				t.Errorf("start %d came %s after the one before, sooner than RestartSec=%s", i+1, gap, restartSec)
			}
		}
		if n := show["NRestarts"]; n != strconv.Itoa(burst) {
			t.Errorf("NRestarts=%s, want %d: the first start and %d restarts, the last one refused", n, burst, burst-1)
		}
		// One error line per failed start, naming what is missing.
		if len(missing) != len(starts) {
			t.Errorf("%d \"Error:\" lines about BTF for %d starts, want one per start", len(missing), len(starts))
		}
		for _, m := range missing {
			if !strings.Contains(m, "no usable BTF") || !strings.Contains(m, "CONFIG_DEBUG_INFO_BTF=y") || !strings.Contains(m, "Linux 5.10 or later") {
				t.Errorf("want the line to name BTF, CONFIG_DEBUG_INFO_BTF=y and Linux 5.10 or later: %s", m)
			}
		}
		if st := read("nobtf.status"); !strings.Contains(st, "Start request repeated too quickly") || !strings.Contains(st, "status=1/FAILURE") {
			t.Errorf("systemctl status does not show the start limit and the failed start:\n%s", st)
		}
		t.Logf("systemctl status:\n%s", read("nobtf.status"))
		if a := read("nobtf.repaired"); a != "active" {
			t.Errorf("after removing the drop-in and systemctl reset-failed: %s, want active (and ready)", a)
		}
	})

	t.Run("apt remove keeps the config, purge leaves nothing", func(t *testing.T) {
		if rc := read("remove.rc"); rc != "0" {
			t.Errorf("apt-get remove exited %s:\n%s", rc, read("remove.log"))
		}
		if s := read("remove.status"); s != "deinstall ok config-files" {
			t.Errorf("dpkg status after remove: %q", s)
		}
		if !strings.Contains(read("remove.config.yaml"), "receivers:") {
			t.Error("apt remove removed /etc/otelcol-execsnoop/config.yaml")
		}
		if b := read("remove.binaries"); strings.Count(b, "No such file") != 2 {
			t.Errorf("binaries after remove:\n%s", b)
		}
		if a := read("remove.active"); a != "inactive" {
			t.Errorf("service after remove: %s", a)
		}
		if ps := read("remove.processes"); ps != "" {
			t.Errorf("processes of otelcol-execsnoop after remove: %s", ps)
		}
		if rc := read("purge.rc"); rc != "0" {
			t.Errorf("apt-get purge exited %s:\n%s", rc, read("purge.log"))
		}
		if s := read("purge.status"); !strings.Contains(s, "no packages found") && s != "" {
			t.Errorf("dpkg status after purge: %q", s)
		}
		if u := read("purge.passwd") + read("purge.group"); u != "" {
			t.Errorf("user or group left after purge: %q", u)
		}
		if l := read("purge.leftovers"); l != "" {
			t.Errorf("files left after purge:\n%s", l)
		}
	})

	t.Run("systemd-analyze", func(t *testing.T) {
		sec := read("security.txt")
		t.Logf("systemd-analyze security:\n%s", sec)
		m := regexp.MustCompile(`Overall exposure level for otelcol-execsnoop.service: ([0-9.]+)`).FindStringSubmatch(sec)
		if m == nil {
			t.Fatal("no exposure level in systemd-analyze security's output")
		}
		if score, _ := strconv.ParseFloat(m[1], 64); score > maxExposure {
			t.Errorf("exposure %.1f, above the %.1f the unit had", score, maxExposure)
		}
		if rc := read("verify.rc"); rc != "0" || read("verify.txt") != "" {
			t.Errorf("systemd-analyze verify (exit %s):\n%s", rc, read("verify.txt"))
		}
	})
}

func commandArgs(lr plog.LogRecord) []string {
	raw, _ := lr.Attributes().AsRaw()["process.command_args"].([]any)
	args := make([]string, len(raw))
	for i, a := range raw {
		args[i] = fmt.Sprint(a)
	}
	return args
}

// props parses KEY=VALUE lines (systemctl show, /proc/PID/environ).
func props(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}
