package procattr

import (
	"fmt"
	"testing"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/proctable"
)

// lineageTable holds pid 1 (init, read from /proc) with a child, pid 10,
// whose exec was seen: the parents of the execs the tests map.
func lineageTable() *proctable.Table {
	t := proctable.New(proctable.Config{MaxAncestors: 8, ArgsBytes: 1024})
	t.Load([]proctable.Running{{PID: 1, Exe: "/sbin/init", Args: []string{"/sbin/init", "\xff"}}})
	t.Observe(&bpf.Event{Kind: bpf.KindExec, PID: 10, PPID: 1, Args: []string{"bash", "-l"},
		Executable: bpf.Executable{Valid: true, Path: "/usr/bin/bash"}})
	return t
}

func TestLineageAttributes(t *testing.T) {
	m := &Mapper{Table: lineageTable()}
	for _, c := range []struct {
		ppid uint32
		want map[string]any
	}{
		{1, map[string]any{ParentSource: "procfs", ParentExecutablePath: "/sbin/init",
			ParentCommandArgs: []string{"/sbin/init", `\xff`}, AncestorsPID: []int64{1}, AncestorsExecutableName: []string{"init"}}},
		{10, map[string]any{ParentSource: "exec", ParentExecutablePath: "/usr/bin/bash",
			ParentCommandArgs: []string{"bash", "-l"}, AncestorsPID: []int64{10, 1}, AncestorsExecutableName: []string{"bash", "init"}}},
		{99, map[string]any{ParentSource: "unknown", ParentExecutablePath: nil, ParentCommandArgs: nil, AncestorsPID: nil,
			AncestorsExecutableName: nil}},
	} {
		got := MapSink{}
		m.Attributes(&bpf.Event{Kind: bpf.KindExec, PID: 20, PPID: c.ppid}, got)
		for k, want := range c.want {
			if fmt.Sprint(got[k]) != fmt.Sprint(want) || (want == nil) != (got[k] == nil) {
				t.Errorf("parent %d: %s = %#v, want %#v", c.ppid, k, got[k], want)
			}
		}
	}
	// Exits and forks carry no lineage.
	got := MapSink{}
	m.Attributes(&bpf.Event{Kind: bpf.KindExit, PID: 20, PPID: 10}, got)
	if got[ParentSource] != nil {
		t.Errorf("exit has lineage: %v", got)
	}
}

func TestExecContextGroups(t *testing.T) {
	ev := &bpf.Event{Kind: bpf.KindExec, PID: 20, PPID: 10, TTYIndex: 1, TTYName: "pts1", CapEffective: 1}
	for _, c := range []struct {
		names []string
		has   map[string]bool
	}{
		{[]string{"credentials", "lineage", "session"}, map[string]bool{ProcessRealUserID: true, ParentSource: true, ProcessSessionLeaderPID: true, TTY: true}},
		{[]string{"credentials"}, map[string]bool{ProcessRealUserID: true, CapabilitiesEffective: true, ParentSource: false, ProcessSessionLeaderPID: false, TTY: false}},
		{[]string{"session"}, map[string]bool{ProcessRealUserID: false, ParentSource: false, ProcessInteractive: true}},
		{nil, map[string]bool{ProcessRealUserID: false, ParentSource: false, ProcessInteractive: false, ProcessUserID: true, ExecID: true}},
	} {
		g, err := ParseGroups(c.names)
		if err != nil {
			t.Fatal(err)
		}
		got := MapSink{}
		(&Mapper{Table: lineageTable(), Omit: GroupsAll &^ g}).Attributes(ev, got)
		for k, want := range c.has {
			if _, ok := got[k]; ok != want {
				t.Errorf("exec_context %v: has %s %v, want %v", c.names, k, ok, want)
			}
		}
	}
	if _, err := ParseGroups([]string{"lineage", "creds"}); err == nil || err.Error() != `"creds" is no group: use credentials, lineage, session` {
		t.Errorf("ParseGroups(creds): %v", err)
	}
}
