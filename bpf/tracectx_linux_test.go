//go:build linux && (amd64 || arm64)

package bpf

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

const (
	testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	testTracestate  = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
)

// runWithEnv runs /bin/true with exactly this environment and returns its
// exec event.
func runWithEnv(t *testing.T, r *recorder, env []string) Event {
	t.Helper()
	cmd := exec.Command("/bin/true")
	cmd.Env = env
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return r.waitFor(t, "exec", execOf(cmd.Process.Pid))
}

func TestTraceContextFromEnv(t *testing.T) {
	r := startRecorder(t, Options{TraceContext: true})
	if got := r.probe.KernelReport().Features["trace_context"]; got != "env" {
		t.Fatalf("kernel report: trace_context %q, want env", got)
	}
	cases := []struct {
		name          string
		env           []string
		parent, state string
		envTruncated  bool
	}{
		{"first", []string{"TRACEPARENT=" + testTraceparent, "TRACESTATE=" + testTracestate, "A=b"}, testTraceparent, testTracestate, false},
		{"after 20 KiB", append(testenv.FillerEnv("FILLER", 20*1024), "TRACESTATE="+testTracestate, "TRACEPARENT="+testTraceparent), testTraceparent, testTracestate, false},
		{"last of 31 KiB", append(testenv.FillerEnv("FILLER", 31*1024), "TRACEPARENT="+testTraceparent), testTraceparent, "", false},
		{"only exact names", []string{"TRACEPARENT_X=" + testTraceparent, "traceparent=" + testTraceparent,
			"XTRACEPARENT=" + testTraceparent, "TRACESTATEX=" + testTracestate, "TRACEPARENT" + testTraceparent}, "", "", false},
		{"not inside a value", []string{"FOO=a\tTRACEPARENT=" + testTraceparent, "BAR=TRACESTATE=x"}, "", "", false},
		{"empty", nil, "", "", false},
		{"past the budget", append(testenv.FillerEnv("FILLER", 40*1024), "TRACEPARENT="+testTraceparent), "", "", true},
		{"invalid is passed on", []string{"TRACEPARENT=00-zz"}, "00-zz", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := runWithEnv(t, r, c.env)
			if ev.TraceParent != c.parent || ev.TraceState != c.state {
				t.Errorf("TRACEPARENT %q TRACESTATE %q, want %q %q", ev.TraceParent, ev.TraceState, c.parent, c.state)
			}
			if ev.EnvTruncated != c.envTruncated || ev.EnvUnreadable {
				t.Errorf("env truncated %v unreadable %v, want truncated %v", ev.EnvTruncated, ev.EnvUnreadable, c.envTruncated)
			}
			if ev.Filename != "/bin/true" || len(ev.Args) != 1 || ev.Args[0] != "/bin/true" {
				t.Errorf("filename %q args %q: the values must not disturb the record", ev.Filename, ev.Args)
			}
		})
	}
}

func TestTraceStateIsCut(t *testing.T) {
	r := startRecorder(t, Options{TraceContext: true})
	long := strings.Repeat("a=b,", 200) // 800 bytes
	ev := runWithEnv(t, r, []string{"TRACESTATE=" + long, "TRACEPARENT=" + testTraceparent})
	if ev.TraceState != long[:512] || !ev.TraceStateTruncated || ev.TraceParent != testTraceparent {
		t.Errorf("TRACESTATE %d bytes truncated %v, TRACEPARENT %q; want 512 bytes cut", len(ev.TraceState), ev.TraceStateTruncated, ev.TraceParent)
	}
}

func TestTraceContextBudget(t *testing.T) {
	r := startRecorder(t, Options{TraceContext: true, EnvScanSize: MaxEnvScanSize})
	env := append(testenv.FillerEnv("FILLER", 50*1024), "TRACEPARENT="+testTraceparent)
	if ev := runWithEnv(t, r, env); ev.TraceParent != testTraceparent || ev.EnvTruncated || ev.EnvUnreadable {
		t.Errorf("with a %d-byte budget: TRACEPARENT %q truncated %v unreadable %v", MaxEnvScanSize, ev.TraceParent, ev.EnvTruncated, ev.EnvUnreadable)
	}
}

// A budget below a page: only its bytes are searched.
func TestTraceContextSmallBudget(t *testing.T) {
	r := startRecorder(t, Options{TraceContext: true, EnvScanSize: 1000})
	if ev := runWithEnv(t, r, []string{"TRACEPARENT=" + testTraceparent, "A=b"}); ev.TraceParent != testTraceparent || ev.EnvTruncated {
		t.Errorf("first variable: TRACEPARENT %q truncated %v", ev.TraceParent, ev.EnvTruncated)
	}
	env := append(testenv.FillerEnv("FILLER", 2*1024), "TRACEPARENT="+testTraceparent)
	if ev := runWithEnv(t, r, env); ev.TraceParent != "" || !ev.EnvTruncated {
		t.Errorf("after 2 KiB: TRACEPARENT %q truncated %v, want none and truncated", ev.TraceParent, ev.EnvTruncated)
	}
}

func TestTraceContextOff(t *testing.T) {
	r := startRecorder(t, Options{})
	if got := r.probe.KernelReport().Features["trace_context"]; got != "off" {
		t.Errorf("kernel report: trace_context %q, want off", got)
	}
	if ev := runWithEnv(t, r, []string{"TRACEPARENT=" + testTraceparent}); ev.TraceParent != "" {
		t.Errorf("lookup off, yet TRACEPARENT %q", ev.TraceParent)
	}
}

// The perf transport carries the same record.
func TestTraceContextOverPerf(t *testing.T) {
	r := startRecorder(t, Options{Transport: TransportPerf, TraceContext: true})
	env := append(testenv.FillerEnv("FILLER", 20*1024), "TRACEPARENT="+testTraceparent, "TRACESTATE="+testTracestate)
	if ev := runWithEnv(t, r, env); ev.TraceParent != testTraceparent || ev.TraceState != testTracestate {
		t.Errorf("TRACEPARENT %q TRACESTATE %q", ev.TraceParent, ev.TraceState)
	}
}

// The copy keeps the pages' layout, so the environment starts anywhere in
// a word: shifted byte by byte, the first and the last variables are found.
func TestTraceContextAtEveryAlignment(t *testing.T) {
	r := startRecorder(t, Options{TraceContext: true})
	for pad := range 9 {
		filler := "P=" + strings.Repeat("x", pad)
		for _, env := range [][]string{
			{"TRACEPARENT=" + testTraceparent, filler},
			{filler, "TRACESTATE=" + testTracestate, "TRACEPARENT=" + testTraceparent},
		} {
			ev := runWithEnv(t, r, env)
			if ev.TraceParent != testTraceparent {
				t.Errorf("pad %d, env %q: TRACEPARENT %q", pad, env, ev.TraceParent)
			}
			if want := strings.TrimPrefix(env[1], "TRACESTATE="); len(env) == 3 && ev.TraceState != want {
				t.Errorf("pad %d, env %q: TRACESTATE %q", pad, env, ev.TraceState)
			}
		}
	}
}
