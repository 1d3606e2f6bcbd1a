package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

// These tests need neither root nor BPF: they check the formats on
// synthetic events.

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func execEvent() *bpf.Event {
	return &bpf.Event{Kind: bpf.KindExec, Time: t0.Add(1500 * time.Millisecond), PID: 4242, TID: 4242, PPID: 1,
		UID: 1000, GID: 100, Comm: "sh", Filename: "/bin/sh", Args: []string{"/bin/sh", "-c", "exit 3"}, Argc: 3,
		Syscall: bpf.SyscallExecve, LoginUID: math.MaxUint32}
}

func exitEvent(code uint32) *bpf.Event {
	return &bpf.Event{Kind: bpf.KindExit, Time: t0.Add(1200 * time.Millisecond), PID: 4242, TID: 4242, PPID: 1,
		Comm: "sleep", ExitCode: code, StartTime: t0}
}

func tableLines(t *testing.T, cfg *config, events ...*bpf.Event) []string {
	t.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	tw := newTableWriter(w, cfg, t0)
	tw.header()
	for _, ev := range events {
		if err := tw.write(ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

func TestTableFormat(t *testing.T) {
	failed := execEvent()
	failed.Retval, failed.Args, failed.Filename = -2, []string{"/nonexistent"}, "/nonexistent"
	cut := execEvent()
	cut.ArgsTruncated, cut.Argc = true, 5000
	used := exitEvent(0)
	used.Rusage = bpf.Rusage{Valid: true, UserCPU: 300 * time.Millisecond, SystemCPU: 46 * time.Millisecond, MaxRSS: 64<<20 + 300<<10}
	got := tableLines(t, &config{}, execEvent(), failed, cut, exitEvent(3<<8), exitEvent(9|0x80), used)
	want := []string{
		"PCOMM            PID     PPID    RET ARGS",
		"sh               4242    1         0 /bin/sh -c exit 3",
		"sh               4242    1        -2 /nonexistent",
		"sh               4242    1         0 /bin/sh -c exit 3 ...",
		"sleep            4242    1         3 [exit status 3 after 1.20s]",
		"sleep            4242    1       137 [killed by SIGKILL after 1.20s (core dumped)]",
		"sleep            4242    1         0 [exit status 0 after 1.20s, cpu 0.35s, max rss 64.3 MiB]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	got = tableLines(t, &config{printTime: true, printTimestamp: true, printUID: true, quote: true}, cut)
	wantTime := t0.Add(1500 * time.Millisecond).Local().Format(time.TimeOnly)
	want = []string{
		"TIME     TIME(s)  UID    PCOMM            PID     PPID    RET ARGS",
		wantTime + " 1.500    1000   sh               4242    1         0 /bin/sh -c 'exit 3' # truncated, 5000 arguments",
	}
	if !slices.Equal(got, want) {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTableQuoteRoundTrips(t *testing.T) {
	ev := execEvent()
	ev.Args = []string{"/bin/echo", "a b", "", "x\ny", "it's", "\xff"}
	lines := tableLines(t, &config{quote: true}, ev)
	args := lines[1][strings.Index(lines[1], " 0 ")+3:]
	assertShellSplits(t, args, ev.Args)
}

// assertShellSplits checks that bash splits line into want.
func assertShellSplits(t *testing.T, line string, want []string) {
	t.Helper()
	out, err := exec.Command("bash", "-c", `printf '%s\0' `+line).Output()
	if err != nil {
		t.Fatalf("bash: %v (line %s)", err, line)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !slices.Equal(got, want) {
		t.Errorf("bash split %s into %q, want %q", line, got, want)
	}
}

func TestJSONEqualsTheMapping(t *testing.T) {
	mapper := &procattr.Mapper{}
	failed := execEvent()
	failed.Retval, failed.LoginUID, failed.ArgsTruncated = -13, 1000, true
	used := exitEvent(0)
	used.Rusage = bpf.Rusage{Valid: true, UserCPU: 300 * time.Millisecond, SystemCPU: 46 * time.Millisecond,
		MaxRSS: 64 << 20, MinorFaults: 17000, VoluntaryCtxSwitches: 3, IOAccounted: true, WriteBytes: 8 << 20}
	for _, ev := range []*bpf.Event{execEvent(), failed, exitEvent(3 << 8), exitEvent(15), used} {
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		jw := newJSONWriter(w, mapper)
		if err := jw.write(ev, nil); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if strings.Count(buf.String(), "\n") != 1 || !strings.HasSuffix(buf.String(), "\n") {
			t.Fatalf("not one line: %q", buf.String())
		}
		var got struct {
			Time, Event, Severity, Body string
			Resource                    map[string]string
			Attributes                  map[string]any
		}
		dec := json.NewDecoder(&buf)
		dec.UseNumber()
		if err := dec.Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got.Time != ev.Time.UTC().Format(time.RFC3339Nano) || got.Event != procattr.EventName(ev) ||
			got.Severity != procattr.SeverityOf(ev).Text || got.Body != mapper.Body(ev) || got.Resource != nil {
			t.Errorf("record %+v", got)
		}
		want := procattr.MapSink{}
		mapper.Attributes(ev, want)
		if len(got.Attributes) != len(want) {
			t.Errorf("attributes %v, want %v", got.Attributes, want)
		}
		for k, v := range want {
			if !jsonEqual(got.Attributes[k], v) {
				t.Errorf("%s = %#v, want %#v", k, got.Attributes[k], v)
			}
		}
	}
}

// jsonEqual compares a decoded JSON value (with UseNumber) to a typed one.
func jsonEqual(got, want any) bool {
	switch w := want.(type) {
	case int64:
		n, ok := got.(json.Number)
		i, err := n.Int64()
		return ok && err == nil && i == w
	case float64:
		n, ok := got.(json.Number)
		f, err := n.Float64()
		return ok && err == nil && f == w
	case []string:
		arr, ok := got.([]any)
		if !ok || len(arr) != len(w) {
			return false
		}
		for i := range arr {
			if arr[i] != w[i] {
				return false
			}
		}
		return true
	}
	return got == want
}

func TestOTLPAttributesEqualTheMapping(t *testing.T) {
	mapper := &procattr.Mapper{}
	ev := execEvent()
	ev.Args = []string{"/bin/sh", "-c", "x\xff\xfey"}
	var kv kvSink
	mapper.Attributes(ev, &kv)
	want := procattr.MapSink{}
	mapper.Attributes(ev, want)
	if len(kv) != len(want) {
		t.Fatalf("%d attributes, want %d", len(kv), len(want))
	}
	for _, a := range kv {
		w := want[string(a.Key)]
		var ok bool
		switch a.Value.Type() {
		case attribute.STRING:
			ok = a.Value.AsString() == w
		case attribute.INT64:
			ok = a.Value.AsInt64() == w
		case attribute.BOOL:
			ok = a.Value.AsBool() == w
		case attribute.STRINGSLICE:
			ok = slices.Equal(a.Value.AsStringSlice(), w.([]string))
		}
		if !ok {
			t.Errorf("%s = %v, want %#v", a.Key, a.Value.Emit(), w)
		}
	}
	// The slice attribute is a copy: the next Read reuses Args.
	ev.Args[0] = "changed"
	for _, a := range kv {
		if a.Key == procattr.ProcessCommandArgs && a.Value.AsStringSlice()[0] != "/bin/sh" {
			t.Error("process.command_args shares the event's Args")
		}
	}
}

func TestExpandShortFlags(t *testing.T) {
	got := expandShortFlags([]string{"-xTU", "-n", "-xT", "--exits", "-tq", "--", "-xT"})
	want := []string{"-x", "-T", "-U", "-n", "-xT", "--exits", "-t", "-q", "--", "-xT"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLineFilterKeepsExitsOfMatchedExecs(t *testing.T) {
	l := &loop{cfg: &config{line: "rm -rf"}, matched: map[uint32]struct{}{}}
	ev := execEvent()
	ev.Args = []string{"rm", "-rf", "/tmp/x"}
	if !l.keep(ev) {
		t.Error("the command line rm -rf /tmp/x does not match rm -rf")
	}
	other := execEvent()
	other.PID = 7
	if l.keep(other) {
		t.Error("an unrelated exec matched")
	}
	if !l.keep(exitEvent(0)) {
		t.Error("the exit of a matched exec was dropped")
	}
	exit := exitEvent(0)
	exit.PID = 7
	if l.keep(exit) {
		t.Error("the exit of an unmatched exec was kept")
	}
	n := &loop{cfg: &config{name: "sle"}}
	if !n.keep(exitEvent(0)) || n.keep(execEvent()) {
		t.Error("-n sle: keeps sh or drops sleep")
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-xTU", "-u", "0", "--uid=1000", "--max-args", "10", "--max-bytes", "2048",
		"--buffer", "perf", "--buffer-size", "65536", "--exits", "--json", "-n", "sh", "-l", "marker"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.opts
	if o.FailedExecs != bpf.FailedExecsInclude || !cfg.printTime || !cfg.printUID || !slices.Equal(o.UIDs, []uint32{0, 1000}) ||
		o.MaxArgs != 10 || o.ArgsSize != 2048 || o.Transport != bpf.TransportPerf || o.BufferSize != 65536 ||
		!o.Exits || !cfg.json || cfg.name != "sh" || cfg.line != "marker" || !o.ExcludeSelf {
		t.Errorf("parsed %+v", cfg)
	}
	cfg, err = parseFlags(nil, nil)
	if err != nil || cfg.opts.FailedExecs != bpf.FailedExecsExclude {
		t.Errorf("without -x: %v %v", cfg, err)
	}
	for _, bad := range [][]string{{"-z"}, {"-u", "me"}, {"--max-bytes", "0"}, {"--max-bytes", "100000"},
		{"--buffer", "pipe"}, {"--buffer-size", "1"}, {"-c", "relative/dir"}, {"stray"}, {"--redact", "("},
		{"--otlp-endpoint", "x:1"}} {
		if _, err := parseFlags(bad, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// appendJSONString agrees with encoding/json on every string.
func FuzzAppendJSONString(f *testing.F) {
	f.Add("plain")
	f.Add("q\"u\\o\nte\t\x01\x7f é \xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		var decodedWant, decodedGot string
		_ = json.Unmarshal(want, &decodedWant)
		if err := json.Unmarshal(appendJSONString(nil, s), &decodedGot); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, appendJSONString(nil, s), err)
		}
		if decodedGot != decodedWant {
			t.Fatalf("%q decodes to %q, encoding/json's to %q", s, decodedGot, decodedWant)
		}
	})
}

func BenchmarkJSONWrite(b *testing.B) {
	ev := &bpf.Event{Kind: bpf.KindExec, PID: 4242, TID: 4242, PPID: 1, UID: 1000, Comm: "git",
		Filename: "/usr/bin/git", Args: []string{"/usr/bin/git", "-C", "/src/project", "status", "--porcelain"},
		Argc: 5, Syscall: bpf.SyscallExecve, Time: time.Now()}
	jw := newJSONWriter(bufio.NewWriter(io.Discard), &procattr.Mapper{})
	b.ReportAllocs()
	for b.Loop() {
		if err := jw.write(ev, nil); err != nil {
			b.Fatal(err)
		}
	}
}
