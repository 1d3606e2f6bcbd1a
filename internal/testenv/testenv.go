// Package testenv is what the tests of every layer need from their
// environment: root for BPF, deadlines that scale on slow machines, a
// buffer a process writes while the test reads, free ports, environments
// of a given size and directories other users can reach. It imports
// nothing of the collector, so the bpf package's tests stay below it.
package testenv

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// RequireRoot skips a test that loads BPF programs when not root, except
// under CI, where it fails: there a skip would hide that nothing ran.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test loads BPF programs and must run as root")
	}
	t.Skip("needs root to load BPF programs")
}

// PortsEnv limits the ports FreePort hands out to a range, "19100-19199",
// on a machine where several runs share the loopback ports; unset, the
// kernel picks any free one.
const PortsEnv = "EXECSNOOP_TEST_PORTS"

// nextPort walks PortsEnv's range, so that two calls before either port
// is bound get different ports.
var nextPort atomic.Int64

// FreePort is a loopback TCP port nobody listens on now: in $EXECSNOOP_TEST_PORTS
// when it is set.
func FreePort() (int, error) {
	spec := os.Getenv(PortsEnv)
	if spec == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	var lo, hi int
	if n, err := fmt.Sscanf(spec, "%d-%d", &lo, &hi); n != 2 || err != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, fmt.Errorf("$%s is %q: want a range of ports like 19100-19199", PortsEnv, spec)
	}
	for range hi - lo + 1 {
		port := lo + int(nextPort.Add(1)-1)%(hi-lo+1)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port in $%s=%s", PortsEnv, spec)
}

// Port is FreePort for tests.
func Port(t testing.TB) int {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// SyncBuffer is a bytes.Buffer for one writer and concurrent readers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FillerEnv is about n bytes of ordinary environment variables, each of
// them 100 bytes ("PREFIXnnnn=xxx...") including its NUL, none of them
// TRACEPARENT, so a lookup of the trace context reads them all.
func FillerEnv(prefix string, n int) []string {
	var env []string
	for i := 0; n > 0; i++ {
		name := fmt.Sprintf("%s%04d=", prefix, i)
		env = append(env, name+strings.Repeat("x", 99-len(name)))
		n -= 100
	}
	return env
}

// SharedDir is a new directory every user can reach (t.TempDir is 0700),
// removed when the test ends: for programs run as an unprivileged user.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "execsnoop-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// SharedCopy copies the program at src into a SharedDir under its own
// name, so that an unprivileged user can run it, and returns the copy.
func SharedCopy(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(SharedDir(t), filepath.Base(src))
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatalf("copying %s: %v", src, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}
