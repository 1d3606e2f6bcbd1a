package testenv

import (
	"net"
	"strconv"
	"testing"
)

// In $EXECSNOOP_TEST_PORTS's range, FreePort passes over a bound port and
// does not hand out the same port twice in a row.
func TestFreePortInRange(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	t.Setenv(PortsEnv, strconv.Itoa(busy)+"-"+strconv.Itoa(busy+10))
	a, errA := FreePort()
	b, errB := FreePort()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a == busy || b == busy || a == b || a < busy || a > busy+10 || b < busy || b > busy+10 {
		t.Errorf("ports %d and %d from %d-%d with %d bound", a, b, busy, busy+10, busy)
	}
	t.Setenv(PortsEnv, "2-1")
	if _, err := FreePort(); err == nil {
		t.Error("an empty range gave a port")
	}
}
