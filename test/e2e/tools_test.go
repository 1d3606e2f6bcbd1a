//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// builtTool is a backend binary that make builds under bin/ (Jaeger,
// VictoriaLogs), or the path in env. Missing, it fails the test in CI and
// skips it elsewhere, naming the make target that builds it.
func builtTool(t *testing.T, env, name, target string) string {
	t.Helper()
	bin := os.Getenv(env)
	if bin == "" {
		bin, _ = filepath.Abs(filepath.Join("../../bin", name))
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v: run `make %s` first", err, target)
		}
		t.Skipf("%s is not built: run `make %s` first", bin, target)
	}
	return bin
}
