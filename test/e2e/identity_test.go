//go:build linux

package e2e

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// A record may wait this long for its hash in these tests, so that a busy
// machine cannot turn a hash into hash.missing=timeout.
const identityWait = "executable:\n  hash:\n    max_wait: 30s\n"

// profilerFileID is process.executable.build_id.htlhash as the
// OpenTelemetry eBPF profiler defines it, computed here from the whole
// file: sha256(head 4096 || tail 4096 || big-endian length)[:16], hex.
func profilerFileID(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := min(len(data), 4096)
	in := append(append(append([]byte{}, data[:n]...), data[len(data)-n:]...), binary.BigEndian.AppendUint64(nil, uint64(len(data)))...)
	sum := sha256.Sum256(in)
	return hex.EncodeToString(sum[:16])
}

func execWithArg(marker string) func(plog.LogRecord) bool {
	return func(lr plog.LogRecord) bool { return lr.EventName() == "process.exec" && hasArg(lr, marker) }
}

func execOfPID(pid int) func(plog.LogRecord) bool {
	return func(lr plog.LogRecord) bool {
		return lr.EventName() == "process.exec" && attr(lr, "process.pid") == int64(pid)
	}
}

// startLong runs path (a copy of sleep) until the test ends.
func startLong(t *testing.T, path string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(path, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// TestExecutableIdentity: exec records carry the content identity of the
// file that ran, read while the process lives when its file is replaced
// or has no name.
func TestExecutableIdentity(t *testing.T) {
	bin := collectortest.Binary(t)
	port, out := collectortest.StartSink(t, bin, "logs")
	collectortest.Start(t, bin, "source", collectortest.WriteConfig(t, "source", sourceConfig(port, identityWait, "", "logs")))
	marker := fmt.Sprintf("identity-%d", time.Now().UnixNano())
	truePath, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	sleepPath, err := filepath.EvalSymlinks("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}

	// /bin/true: gone before its record is read, hashed through its path.
	if err := exec.Command("/bin/true", marker+"-true").Run(); err != nil {
		t.Fatal(err)
	}
	// A running binary deleted and replaced under its name keeps the
	// first file's hash; the new file has its own.
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	testenv.CopyFile(t, sleepPath, prog, 0o755)
	// sleep takes no marker: its records are found by pid.
	first := startLong(t, prog, "1000")
	if err := os.Remove(prog); err != nil {
		t.Fatal(err)
	}
	testenv.CopyFile(t, truePath, prog, 0o755)
	if err := exec.Command(prog, marker+"-second").Run(); err != nil {
		t.Fatal(err)
	}
	// A memfd exec of a copy of sleep: fileless, hashed through
	// /proc/PID/exe. The memfd is inherited (no CLOEXEC), so the child's
	// /proc/self/fd/N is the parent's.
	fd, err := unix.MemfdCreate("payload", 0)
	if err != nil {
		t.Fatal(err)
	}
	memfd := os.NewFile(uintptr(fd), "memfd")
	src, err := os.Open(sleepPath)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(memfd, src)
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	memExec := startLong(t, fmt.Sprintf("/proc/self/fd/%d", fd), "1000")
	memfd.Close()

	rec := waitRecord(t, out, "/bin/true exec", execWithArg(marker+"-true"))
	m := regexp.MustCompile(`Build ID: ([0-9a-f]+)`).FindStringSubmatch(output(t, "readelf", "-n", truePath))
	if m == nil {
		t.Fatalf("readelf -n %s prints no build id", truePath)
	}
	for key, want := range map[string]any{
		"execsnoop.executable.hash.sha256":    testenv.FileSHA256(t, truePath),
		"process.executable.build_id.gnu":     m[1],
		"process.executable.build_id.htlhash": profilerFileID(t, truePath),
		"execsnoop.executable.hash.missing":   nil,
	} {
		if got := attr(rec, key); got != want {
			t.Errorf("/bin/true: %s = %v, want %v", key, got, want)
		}
	}
	firstRec := waitRecord(t, out, "replaced binary's exec", execOfPID(first.Process.Pid))
	if got, want := attr(firstRec, "execsnoop.executable.hash.sha256"), testenv.FileSHA256(t, sleepPath); got != want {
		t.Errorf("deleted and replaced while running: sha256 %v (missing %v), want the first file's (sleep) %s",
			got, attr(firstRec, "execsnoop.executable.hash.missing"), want)
	}
	second := waitRecord(t, out, "replacement's exec", execWithArg(marker+"-second"))
	if got, want := attr(second, "execsnoop.executable.hash.sha256"), testenv.FileSHA256(t, truePath); got != want {
		t.Errorf("the replacement: sha256 %v, want true's %s", got, want)
	}
	mem := waitRecord(t, out, "memfd exec", execOfPID(memExec.Process.Pid))
	if attr(mem, "execsnoop.executable.memfd") != true || attr(mem, "execsnoop.executable.deleted") != false {
		t.Errorf("memfd exec: memfd %v deleted %v", attr(mem, "execsnoop.executable.memfd"), attr(mem, "execsnoop.executable.deleted"))
	}
	if got, want := attr(mem, "execsnoop.executable.hash.sha256"), testenv.FileSHA256(t, sleepPath); got != want {
		t.Errorf("memfd exec: sha256 %v (missing %v), want sleep's %s", got, attr(mem, "execsnoop.executable.hash.missing"), want)
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

// Without CAP_SYS_PTRACE the collector says so once at start-up, and a
// short binary of another user that it may not read gets
// hash.missing=unreadable; the collector keeps running.
func TestExecutableUnreadableWithoutPtrace(t *testing.T) {
	bin := collectortest.Binary(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv (util-linux) is needed")
	}
	copyBin := testenv.SharedCopy(t, bin)
	config := filepath.Join(filepath.Dir(copyBin), "config.yaml")
	metricsPort := testenv.Port(t)
	if err := os.WriteFile(config, []byte(`
receivers:
  execsnoop:
    executable:
      hash:
        max_wait: 30s
exporters:
  debug:
    verbosity: detailed
service:`+collectortest.TelemetryConfig(metricsPort)+`
  pipelines:
    logs:
      receivers: [execsnoop]
      exporters: [debug]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// As nobody with CAP_BPF and CAP_PERFMON only, as TestLeastPrivilege.
	args := []string{"--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+bpf,+perfmon",
		"--ambient-caps=+bpf,+perfmon", copyBin, "--config", config}
	c := collectortest.Start(t, "setpriv", "no-ptrace", "", func(cmd *exec.Cmd) { cmd.Args = append([]string{"setpriv"}, args...) })

	// Another user's binary that only its owner may read.
	const owner = 4242
	dir := testenv.SharedDir(t)
	private := filepath.Join(dir, "private-true")
	testenv.CopyFile(t, "/bin/true", private, 0o700)
	if err := os.Chown(private, owner, owner); err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("unreadable-%d", time.Now().UnixNano())
	cmd := exec.Command(private, marker)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: owner, Gid: owner}}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testenv.Timeout(15 * time.Second))
	var block string
	for block == "" {
		for _, b := range strings.Split(c.Output.String(), "LogRecord #") {
			if strings.Contains(b, marker) && strings.Contains(b, "process.exec") {
				block = b
			}
		}
		if block == "" && time.Now().After(deadline) {
			t.Fatalf("no record of the other user's exec:\n%s", c.Output)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(block, "execsnoop.executable.hash.missing: Str(unreadable)") ||
		strings.Contains(block, "execsnoop.executable.hash.sha256") {
		t.Errorf("the other user's exec is not marked unreadable:\n%s", block)
	}
	// The reason is counted in the receiver's telemetry.
	for !missingCounted(metricsPort, "unreadable") {
		if time.Now().After(deadline) {
			t.Fatalf("hash.missing{reason=unreadable} is not counted on :%d/metrics", metricsPort)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := strings.Count(c.Output.String(), "no CAP_SYS_PTRACE"); n != 1 {
		t.Errorf("the start-up line about CAP_SYS_PTRACE appears %d times, want once:\n%s", n, c.Output)
	}
}

// missingCounted reports whether the collector's hash.missing counter has
// a sample above 0 for reason.
func missingCounted(port int, reason string) bool {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "otelcol_execsnoop_receiver_executable_hash_missing") &&
			strings.Contains(line, `reason="`+reason+`"`) && !strings.HasSuffix(line, " 0") {
			return true
		}
	}
	return false
}
