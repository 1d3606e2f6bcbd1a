// Package testenv is what the tests of every layer need from their
// environment: root for BPF, deadlines that scale on slow machines, a
// buffer a process writes while the test reads and free ports. It imports
// nothing of the collector, so the bpf package's tests stay below it.
package testenv

import (
	"bytes"
	"net"
	"os"
	"sync"
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

// FreePort is a loopback TCP port nobody listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
