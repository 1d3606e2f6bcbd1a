package proctable

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/redact"
)

func redactor(t testing.TB) *redact.Redactor {
	r, err := redact.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func exec(pid, ppid uint32, exe string, args ...string) *bpf.Event {
	return &bpf.Event{Kind: bpf.KindExec, PID: pid, TID: pid, PPID: ppid, Args: args,
		Image:      bpf.Image{PID: pid, StartBootNs: uint64(pid) * 1e9, ExecSeq: 1},
		Executable: bpf.Executable{Valid: true, Path: exe}}
}

// child is an exec by pid whose parent runs the image ppid's exec made.
func child(pid, ppid uint32) *bpf.Event {
	ev := exec(pid, ppid, "/usr/bin/true", "true")
	ev.ParentImage = bpf.Image{PID: ppid, StartBootNs: uint64(ppid) * 1e9, ExecSeq: 1}
	return ev
}

func TestReadProcFromFakeRoot(t *testing.T) {
	procs, err := ReadProc("testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []uint32
	for _, p := range procs {
		pids = append(pids, p.PID)
	}
	// Oldest first; 400 has no stat (it exited) and self is no pid.
	if want := []uint32{1, 2, 100, 200, 300}; !slices.Equal(pids, want) {
		t.Fatalf("pids %v, want %v", pids, want)
	}
	sh := procs[3]
	if sh.PPID != 100 || sh.StartTicks != 900 || sh.Comm != "my (sh) x" || sh.Exe != "/usr/bin/dash" ||
		!slices.Equal(sh.Args, []string{"sh", "-c", "deploy", "--password=hunter2"}) {
		t.Errorf("pid 200: %+v", sh)
	}
	if k := procs[1]; k.Exe != "" || k.Args != nil || k.Comm != "kthreadd" {
		t.Errorf("kernel thread: %+v", k)
	}
}

func TestLoadProcGivesLineage(t *testing.T) {
	tab := New(Config{MaxAncestors: 8, ArgsBytes: 1024, Redactor: redactor(t)})
	n, err := tab.LoadProc("testdata/proc")
	if err != nil || n != 5 {
		t.Fatalf("LoadProc: %d, %v", n, err)
	}
	ev := exec(301, 300, "/usr/bin/id", "id")
	// The kernel names the parent's image with its start in nanoseconds;
	// /proc has ticks of 10 ms.
	ev.ParentImage = bpf.Image{PID: 300, StartBootNs: 900*ticksNs + 1234, ExecSeq: 7}
	ev.PPID = 200
	ev.ParentImage.PID = 200
	parent, src := tab.Parent(ev)
	if src != SourceProcfs || parent.Path != "/usr/bin/dash" || parent.Name != "dash" {
		t.Fatalf("parent %+v, %s", parent, src)
	}
	if want := []string{"sh", "-c", "deploy", "--password=" + redact.Mask}; !slices.Equal(parent.Args, want) {
		t.Errorf("parent args %q, want %q", parent.Args, want)
	}
	pids, names := tab.Ancestors(ev)
	if !slices.Equal(pids, []int64{200, 100, 1}) || !slices.Equal(names, []string{"dash", "bash", "systemd"}) {
		t.Errorf("ancestors %v %v", pids, names)
	}
	// Another image at the pid (an exit and a reuse that were lost): the
	// table does not claim to know it.
	ev.ParentImage.StartBootNs = 901 * ticksNs
	if p, src := tab.Parent(ev); p != nil || src != SourceUnknown {
		t.Errorf("stale parent %+v, %s", p, src)
	}
	if pids, _ := tab.Ancestors(ev); pids != nil {
		t.Errorf("ancestors of an unknown parent: %v", pids)
	}
	if k := tab.Get(2); k.Name != "kthreadd" || k.Path != "" || k.Source != SourceProcfs {
		t.Errorf("kernel thread %+v", k)
	}
}

func TestExecForkExit(t *testing.T) {
	tab := New(Config{MaxAncestors: 2, ArgsBytes: 1024})
	tab.Observe(exec(10, 1, "/usr/bin/bash", "bash", "-c", "x"))
	tab.Observe(&bpf.Event{Kind: bpf.KindFork, PID: 11, PPID: 10, Image: bpf.Image{PID: 11, StartBootNs: 11e9, ExecSeq: 1}})
	tab.Observe(&bpf.Event{Kind: bpf.KindFork, PID: 12, PPID: 11, Image: bpf.Image{PID: 12, StartBootNs: 12e9, ExecSeq: 1}})
	// A fork from an unknown parent adds nothing.
	tab.Observe(&bpf.Event{Kind: bpf.KindFork, PID: 50, PPID: 49})
	if tab.Len() != 3 || tab.Get(50) != nil {
		t.Fatalf("len %d, 50: %+v", tab.Len(), tab.Get(50))
	}
	// 12 forked from 11 forked from 10: both run bash.
	ev := child(13, 12)
	ev.ParentImage.StartBootNs, ev.ParentImage.ExecSeq = 12e9, 1
	p, src := tab.Parent(ev)
	if src != SourceExec || p.Path != "/usr/bin/bash" || !slices.Equal(p.Args, []string{"bash", "-c", "x"}) {
		t.Fatalf("parent %+v %s", p, src)
	}
	if pids, names := tab.Ancestors(ev); !slices.Equal(pids, []int64{12, 11}) || !slices.Equal(names, []string{"bash", "bash"}) {
		t.Errorf("ancestors (at most 2) %v %v", pids, names)
	}
	// A failed exec changes nothing; a successful one replaces the image.
	failed := exec(12, 11, "/nonexistent")
	failed.Retval = -2
	tab.Observe(failed)
	if tab.Get(12).Path != "/usr/bin/bash" {
		t.Errorf("a failed exec replaced the image: %+v", tab.Get(12))
	}
	tab.Observe(exec(12, 11, "/usr/bin/make", "make"))
	if e := tab.Get(12); e.Path != "/usr/bin/make" || e.Name != "make" {
		t.Errorf("after exec %+v", e)
	}
	tab.Observe(&bpf.Event{Kind: bpf.KindExit, PID: 11})
	if tab.Get(11) != nil || tab.Len() != 2 {
		t.Errorf("exit did not forget 11")
	}
	// The chain stops where the table has no entry.
	ev = child(20, 12)
	ev.ParentImage = tab.Get(12).Image
	if pids, _ := tab.Ancestors(ev); !slices.Equal(pids, []int64{12}) {
		t.Errorf("ancestors past an exited process %v", pids)
	}
	off := New(Config{MaxAncestors: 0})
	off.Observe(exec(10, 1, "/usr/bin/bash"))
	if pids, names := off.Ancestors(child(11, 10)); len(pids) != 0 || len(names) != 0 {
		t.Errorf("max_ancestors 0 gives %v %v", pids, names)
	}
}

func TestBoundDropsOldest(t *testing.T) {
	tab := New(Config{MaxProcesses: 3})
	for pid := uint32(1); pid <= 5; pid++ {
		tab.Observe(exec(pid, 0, "/bin/p"))
	}
	if tab.Len() != 3 || tab.Get(1) != nil || tab.Get(2) != nil || tab.Get(5) == nil {
		t.Errorf("len %d; 1 %v 2 %v 5 %v", tab.Len(), tab.Get(1), tab.Get(2), tab.Get(5))
	}
	if d := tab.Dropped(); d != 2 {
		t.Errorf("dropped %d, want 2", d)
	}
	if d := tab.Dropped(); d != 0 {
		t.Errorf("Dropped does not reset: %d", d)
	}
	// An exit frees a slot: the next process drops nothing.
	tab.Observe(&bpf.Event{Kind: bpf.KindExit, PID: 4})
	tab.Observe(exec(6, 0, "/bin/p"))
	if d := tab.Dropped(); d != 0 || tab.Len() != 3 {
		t.Errorf("dropped %d, len %d", d, tab.Len())
	}
	// A new exec by a held process is no new entry.
	tab.Observe(exec(6, 0, "/bin/q"))
	if d := tab.Dropped(); d != 0 {
		t.Errorf("re-exec dropped %d", d)
	}
}

func TestArgsAreBounded(t *testing.T) {
	for _, c := range []struct {
		budget int
		want   []string
	}{
		{0, nil},
		{1024, []string{"cmd", "abcdef", "x"}},
		{4, []string{"cmd"}},            // "cmd\0"
		{6, []string{"cmd", "a"}},       // then one byte of the next
		{5, []string{"cmd"}},            // no room for a byte and its NUL
		{2, []string{"c"}},              // the first argument cut
		{11, []string{"cmd", "abcdef"}}, // exactly two
	} {
		tab := New(Config{ArgsBytes: c.budget})
		tab.Observe(exec(1, 0, "/bin/cmd", "cmd", "abcdef", "x"))
		if got := tab.Get(1).Args; !slices.Equal(got, c.want) {
			t.Errorf("budget %d: %q, want %q", c.budget, got, c.want)
		}
	}
}

// BenchmarkMemoryPer10000 measures the heap 10,000 live processes take:
// each exec'd once, with its path (as the decoder allocates it for each
// event) and 4 arguments (about 45 bytes), in a table with the default
// bounds. A forked child that has not exec'd shares its parent's strings
// and costs only its entry.
func BenchmarkMemoryPer10000(b *testing.B) {
	const n = 10000
	r := redactor(b)
	evs := make([]*bpf.Event, n)
	for i := range evs {
		evs[i] = exec(uint32(1000+i), 1, fmt.Sprintf("/usr/bin/prog%d", i%500),
			"prog", "--config", fmt.Sprintf("/etc/prog/%d.conf", i), "--verbose")
	}
	paths := make([]string, n)
	for i, ev := range evs {
		paths[i] = ev.Executable.Path
	}
	var perTable float64
	for b.Loop() {
		var before, after runtime.MemStats
		for i, ev := range evs {
			ev.Executable.Path = paths[i] // free the last round's copies
		}
		runtime.GC()
		runtime.ReadMemStats(&before)
		tab := New(Config{MaxProcesses: DefaultMaxProcesses, MaxAncestors: DefaultMaxAncestors, ArgsBytes: DefaultArgsBytes, Redactor: r})
		for i, ev := range evs {
			// The decoder allocates each event's path, which the
			// table keeps: it is counted.
			ev.Executable.Path = strings.Clone(paths[i])
			tab.Observe(ev)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perTable += float64(after.HeapAlloc) - float64(before.HeapAlloc)
		runtime.KeepAlive(tab)
	}
	b.ReportMetric(perTable/float64(b.N), "bytes/10k-procs")
}

// BenchmarkExecPath is the table's share of one exec record: the parent
// and 8 ancestors looked up, then the exec observed (its args copied), in
// a table of 10,000 processes 8 deep.
func BenchmarkExecPath(b *testing.B) {
	tab := New(Config{MaxAncestors: DefaultMaxAncestors, ArgsBytes: DefaultArgsBytes, Redactor: redactor(b)})
	for pid := uint32(1); pid <= 10000; pid++ {
		tab.Observe(exec(pid, max(pid-1, 1)%10000, "/usr/bin/prog", "prog", "--config", "/etc/prog.conf"))
	}
	ev := child(20000, 5000)
	b.ReportAllocs()
	for b.Loop() {
		if _, src := tab.Parent(ev); src != SourceExec {
			b.Fatal(src)
		}
		if pids, _ := tab.Ancestors(ev); len(pids) != DefaultMaxAncestors {
			b.Fatal(pids)
		}
		tab.Observe(ev)
	}
}
