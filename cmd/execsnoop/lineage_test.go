package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

func ints(v any) []int64 {
	arr, _ := v.([]any)
	var out []int64
	for _, a := range arr {
		var n int64
		fmt.Sscan(fmt.Sprint(a), &n)
		out = append(out, n)
	}
	return out
}

func strs(v any) []string {
	arr, _ := v.([]any)
	var out []string
	for _, a := range arr {
		s, _ := a.(string)
		out = append(out, s)
	}
	return out
}

// --json carries the lineage of an exec, as /proc has it while the chain
// bash -> sh -> sleep is alive; without --exits, the exit program the
// process table loads prints no exit record.
func TestJSONLineage(t *testing.T) {
	testenv.RequireRoot(t)
	c := startCLI(t, "--json", "--max-ancestors", "4")
	chain := testenv.StartChain(t, marker(), false)
	wantPids, wantNames := testenv.ProcAncestry(chain.Sh, 4)
	wantExe, wantArgs := testenv.ProcExe(chain.Sh), testenv.ProcArgs(chain.Sh)
	// sleep's argv is in /proc: its exec is in the kernel buffer, which
	// stopping drains.
	assertStoppedCleanly(t, c, c.stop(t))

	var rec *jsonLine
	lines := parseJSONLines(t, c.stdout.String())
	for i, l := range lines {
		if l.Event == procattr.EventExit {
			t.Errorf("an exit record without --exits: %v", l)
		}
		if p, _ := intAttr(l, procattr.ProcessPID); l.Event == procattr.EventExec && p == int64(chain.Sleep) {
			rec = &lines[i]
		}
	}
	if rec == nil {
		t.Fatalf("no exec record of sleep (pid %d):\n%s", chain.Sleep, c.stdout.String())
	}
	a := rec.Attributes
	if a[procattr.ParentSource] != "exec" || a[procattr.ParentExecutablePath] != wantExe ||
		!slices.Equal(strs(a[procattr.ParentCommandArgs]), wantArgs) {
		t.Errorf("parent: source %v path %v args %q; want exec, %s, %q", a[procattr.ParentSource],
			a[procattr.ParentExecutablePath], a[procattr.ParentCommandArgs], wantExe, wantArgs)
	}
	if got := ints(a[procattr.AncestorsPID]); !slices.Equal(got, wantPids) {
		t.Errorf("ancestors.pid %v, want %v (from /proc)", got, wantPids)
	}
	if got := strs(a[procattr.AncestorsExecutableName]); !slices.Equal(got, wantNames) {
		t.Errorf("ancestors.executable.name %q, want %q (from /proc)", got, wantNames)
	}
	if !strings.Contains(c.stderr.String(), "; process table: 0 processes dropped when full") {
		t.Errorf("the summary does not count the table's drops: %s", c.stderr.String())
	}
}
