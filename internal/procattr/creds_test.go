package procattr

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/redact"
)

// The names are libcap's (capsh --decode prints them in lower case), bit
// by bit; a kernel with more capabilities than the table gets CAP_<n>.
func TestCapabilityNamesMatchLibcap(t *testing.T) {
	if _, err := exec.LookPath("capsh"); err != nil {
		t.Skip("capsh (libcap2-bin) is not installed")
	}
	for n := range capNames {
		out, err := exec.Command("capsh", fmt.Sprintf("--decode=%x", uint64(1)<<n)).Output()
		if err != nil {
			t.Fatalf("capsh --decode: %v", err)
		}
		_, name, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
		if want := strings.ToUpper(name); CapabilityName(n) != want {
			t.Errorf("capability %d: %s, libcap says %s", n, CapabilityName(n), want)
		}
	}
	if got := CapabilityName(len(capNames)); got != fmt.Sprintf("CAP_%d", len(capNames)) {
		t.Errorf("unknown capability named %s", got)
	}
}

func TestCapabilities(t *testing.T) {
	all := capSetUpTo(40)
	cases := []struct {
		set, all uint64
		want     []string
	}{
		{0, all, nil},
		{all, all, []string{CapabilitiesAll}},
		{capSetUpTo(63), all, []string{CapabilitiesAll}}, // bits the kernel does not know change nothing
		{1<<13 | 1<<0, all, []string{"CAP_CHOWN", "CAP_NET_RAW"}},
		{all &^ (1 << 24), all, nil}, // every name but CAP_SYS_RESOURCE, checked below
		{capSetUpTo(41), capSetUpTo(41), []string{CapabilitiesAll}},
		{1 << 41, all, []string{"CAP_41"}},
	}
	for _, c := range cases {
		got := capabilities(c.set, c.all)
		if c.set == all&^(1<<24) {
			if len(got) != 40 || slices.Contains(got, "CAP_SYS_RESOURCE") || got[39] != "CAP_CHECKPOINT_RESTORE" {
				t.Errorf("%#x: %q", c.set, got)
			}
			continue
		}
		if !slices.Equal(got, c.want) || (c.want == nil) != (got == nil) {
			t.Errorf("%#x of %#x: %q, want %q", c.set, c.all, got, c.want)
		}
	}
	// A repeated set is served from the cache, without an allocation.
	if n := testing.AllocsPerRun(100, func() { capabilities(1<<13|1<<12, all) }); n != 0 {
		t.Errorf("%v allocations per repeated set", n)
	}
}

func TestPrivileges(t *testing.T) {
	cases := map[bpf.Privileges][]string{
		0:                nil,
		bpf.PrivSetuid:   {PrivilegeSetuid},
		bpf.PrivSetgid:   {PrivilegeSetgid},
		bpf.PrivFileCaps: {PrivilegeFileCaps},
		bpf.PrivSetuid | bpf.PrivSetgid | bpf.PrivFileCaps: {PrivilegeSetuid, PrivilegeSetgid, PrivilegeFileCaps},
	}
	for p, want := range cases {
		if got := Privileges(p); !slices.Equal(got, want) || (want == nil) != (got == nil) {
			t.Errorf("%#x: %q, want %q", p, got, want)
		}
	}
}

func TestCredentialAttributes(t *testing.T) {
	ev := &bpf.Event{Kind: bpf.KindExec, UID: 0, GID: 65534, RealUID: 65534, SavedUID: 0, RealGID: 65534,
		SavedGID: 65534, CapEffective: allCapabilities(), Privileges: bpf.PrivSetuid, StartTime: start}
	got := MapSink{}
	(&Mapper{}).Attributes(ev, got)
	want := map[string]any{ProcessUserID: int64(0), ProcessRealUserID: int64(65534), ProcessSavedUserID: int64(0),
		GroupID: int64(65534), RealGroupID: int64(65534), SavedGroupID: int64(65534),
		CapabilitiesEffective: []string{"all"}, PrivilegesGained: []string{"setuid"},
		ProcessCreationTime: "2026-11-25T10:00:00Z"}
	for k, v := range want {
		if !equal(got[k], v) {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}

	// A plain exec by a user: no capabilities, nothing raised, and neither
	// attribute at all. Exit and fork records carry only the effective ids.
	ev.UID, ev.SavedUID, ev.CapEffective, ev.Privileges = 65534, 65534, 0, 0
	for _, kind := range []bpf.Kind{bpf.KindExec, bpf.KindExit, bpf.KindFork} {
		ev.Kind = kind
		got = MapSink{}
		(&Mapper{}).Attributes(ev, got)
		for _, k := range []string{CapabilitiesEffective, PrivilegesGained} {
			if _, ok := got[k]; ok {
				t.Errorf("%s record has %s = %v", kind, k, got[k])
			}
		}
		if _, ok := got[ProcessRealUserID]; ok != (kind == bpf.KindExec) {
			t.Errorf("%s record: %s present %v", kind, ProcessRealUserID, ok)
		}
		if got[ProcessUserID] != int64(65534) || got[GroupID] != int64(65534) {
			t.Errorf("%s record: %v", kind, got)
		}
	}
}

// maxExecutable is an executable with every optional attribute: a script
// (relative, so that its path is built) on overlayfs, its path cut.
var maxExecutable = bpf.Executable{Valid: true, Path: "/bin/sh", PathCut: true, Script: true, Overlay: true,
	UpperLayer: true, Mode: 0o100755, Links: 1}

// MaxAttributes holds the most attributes an event can have: a successful
// exec with every flag, capabilities, privileges and the executable_file
// group (one more for the cgroup). A failed exec has error.type but no
// executable.
func TestMaxAttributesHoldsTheLargestExec(t *testing.T) {
	r, err := redact.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := &bpf.Event{Kind: bpf.KindExec, PPID: 1, Args: []string{"a", "--password=x", "\xff"}, LoginUID: 1000,
		ArgsTruncated: true, ArgsUnreadable: true, FilenameTruncated: true, CapEffective: 1, Privileges: bpf.PrivFileCaps,
		PID: 7, VPID: 1, TTYIndex: 0, TTYName: "pts0", AuditSessionID: 3, Filename: "./s", Cwd: "/srv",
		Executable: maxExecutable}
	got := MapSink{}
	(&Mapper{Redactor: r, ExecutableFile: true, Table: lineageTable()}).Attributes(ev, got)
	if got[ArgsRedacted] != true || got[ArgsEscaped] != true || got[ExecScriptPath] != "/srv/s" || got[ExecutableUpperLayer] != true || got[AncestorsPID] == nil {
		t.Fatalf("not the largest exec: %v", got)
	}
	if len(got)+1 != MaxAttributes {
		t.Errorf("the largest exec has %d attributes, MaxAttributes is %d", len(got)+1, MaxAttributes)
	}
}
