//go:build linux

package main

import "testing"

// A skipped test's reason is its last output line before `--- SKIP`, not
// the line after it (the next test's header).
func TestSkipReasons(t *testing.T) {
	var s skipReasons
	for _, line := range []string{
		"=== RUN   TestExecveat",
		"    events_linux_test.go:10: started",
		"=== RUN   TestExecveat/fd",
		"        events_linux_test.go:20: sub",
		"    events_linux_test.go:30: execveat AT_EMPTY_PATH refused by this kernel",
		"--- SKIP: TestExecveat (0.10s)",
		"=== RUN   TestOther",
	} {
		s.line(line)
	}
	if got, want := s.reason("TestExecveat"), "events_linux_test.go:30: execveat AT_EMPTY_PATH refused by this kernel"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
	if got := s.reason("TestOther"); got != "" {
		t.Errorf("TestOther: %q", got)
	}
}
