package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	collogpb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// These tests run the CLI with --otlp against a dead endpoint, a late one
// and a small OTLP/gRPC sink that refuses all or some records, and check
// that its summary accounts for every record: seen = exported + dropped +
// not exported at exit + filtered. The CLI runs with -l MARKER, so the
// only records are the marked execs; every other exec on the host is
// counted as filtered.

const marks = 5 // marked execs per test

// stopWith sends sig and waits for the exit; it returns the exit code.
func (c *cli) stopWith(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	case <-time.After(3 * waitFor):
		c.cmd.Process.Kill()
		<-c.done
		t.Fatalf("execsnoop did not end after %s; stderr: %s", sig, c.stderr.String())
	}
	var exitErr *exec.ExitError
	if errors.As(c.waitErr, &exitErr) {
		return exitErr.ExitCode()
	}
	if c.waitErr != nil {
		t.Fatal(c.waitErr)
	}
	return 0
}

// otlpSummary is the exit summary of a --otlp run.
type otlpSummary struct {
	line                                                string
	seen, total, exported, dropped, notExported, filter int
	reasons                                             string // of the dropped
}

var otlpSummaryRE = regexp.MustCompile(`(?m)^execsnoop: (\d+) events seen, \d+ lost(?:, \d+ undecodable)?; OTLP records: ` +
	`(\d+) = (\d+) exported \+ (\d+) dropped(?: \((.*)\))? \+ (\d+) not exported at exit(?: \(.*\))? \+ (\d+) filtered by -n/-l(?:; process table: \d+ processes dropped when full)?$`)

// parseOTLPSummary finds the summary and checks that it adds up.
func parseOTLPSummary(t *testing.T, stderr string) otlpSummary {
	t.Helper()
	m := otlpSummaryRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no OTLP summary on stderr: %s", stderr)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	s := otlpSummary{line: m[0], seen: n(1), total: n(2), exported: n(3), dropped: n(4), reasons: m[5],
		notExported: n(6), filter: n(7)}
	if s.total != s.seen || s.exported+s.dropped+s.notExported+s.filter != s.total {
		t.Errorf("summary does not add up: %s", s.line)
	}
	return s
}

// startOTLP runs the CLI exporting the execs marked mark to endpoint.
func startOTLP(t *testing.T, endpoint, mark string, env ...string) *cli {
	t.Helper()
	cmd := exec.Command(binary, "--otlp", "--otlp-endpoint", endpoint, "--otlp-insecure", "--quiet", "-l", mark)
	cmd.Env = append(os.Environ(), env...)
	return startCommand(t, cmd)
}

// runMarks runs marks execs of /bin/true with the arguments mark-0, mark-1...
func runMarks(t *testing.T, mark string) {
	t.Helper()
	for i := range marks {
		runMarked(t, "/bin/true", fmt.Sprintf("%s-%d", mark, i))
	}
}

// logsSink is an OTLP/gRPC logs endpoint. It remembers the marker
// argument of every record it is sent and answers as answer says.
type logsSink struct {
	collogpb.UnimplementedLogsServiceServer
	answer func(marks []string) (*collogpb.ExportLogsServiceResponse, error)

	mu                       sync.Mutex
	received                 map[string]int // marker argument: times sent
	sent, accepted, rejected int            // records
}

func (s *logsSink) Export(_ context.Context, req *collogpb.ExportLogsServiceRequest) (*collogpb.ExportLogsServiceResponse, error) {
	var got []string
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			for _, rec := range sl.GetLogRecords() {
				arg := ""
				for _, kv := range rec.GetAttributes() {
					if vs := kv.GetValue().GetArrayValue().GetValues(); kv.GetKey() == procattr.ProcessCommandArgs && len(vs) > 1 {
						arg = vs[1].GetStringValue()
					}
				}
				got = append(got, arg)
			}
		}
	}
	resp, err := s.answer(got)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, arg := range got {
		s.received[arg]++
	}
	s.sent += len(got)
	if err == nil {
		rejected := int(resp.GetPartialSuccess().GetRejectedLogRecords())
		s.rejected += rejected
		s.accepted += len(got) - rejected
	}
	return resp, err
}

// count returns how many distinct marked records the sink received, and
// whether any came more than once.
func (s *logsSink) count(mark string) (distinct int, dup bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for arg, n := range s.received {
		if strings.HasPrefix(arg, mark+"-") {
			distinct++
			dup = dup || n > 1
		}
	}
	return distinct, dup
}

func accept([]string) (*collogpb.ExportLogsServiceResponse, error) {
	return &collogpb.ExportLogsServiceResponse{}, nil
}

// serveSink serves a sink on l until the test ends.
func serveSink(t *testing.T, l net.Listener, answer func([]string) (*collogpb.ExportLogsServiceResponse, error)) *logsSink {
	sink := &logsSink{answer: answer, received: make(map[string]int)}
	srv := grpc.NewServer()
	collogpb.RegisterLogsServiceServer(srv, sink)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return sink
}

func listen(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// waitForDropWarning waits for the running CLI's warning that total
// records were dropped in all.
func waitForDropWarning(t *testing.T, c *cli, total int) {
	t.Helper()
	re := regexp.MustCompile(fmt.Sprintf(`(?m)^execsnoop: OTLP: dropped \d+ records \(total %d\); so far \d+ = \d+ exported \+ %d dropped`, total, total))
	require.Eventually(t, func() bool { return re.MatchString(c.stderr.String()) }, 2*waitFor, 20*time.Millisecond,
		"no warning of %d dropped records; stderr: %s", total, c.stderr.String())
}

// A dead endpoint: once the exporter gives up (after its timeout, 2 s
// here), the records are counted as dropped with the gRPC code, while the
// CLI runs and at the end; interrupted before that, they are not exported
// at exit, or dropped as the flush fails. Either way all are accounted for.
func TestOTLPDeadEndpoint(t *testing.T) {
	testenv.RequireRoot(t)
	endpoint := fmt.Sprintf("127.0.0.1:%d", testenv.Port(t))

	t.Run("dropped after the exporter's timeout", func(t *testing.T) {
		mark := marker()
		c := startOTLP(t, endpoint, mark, "OTEL_EXPORTER_OTLP_TIMEOUT=2000")
		runMarks(t, mark)
		waitForDropWarning(t, c, marks)
		if code := c.stopWith(t, syscall.SIGINT); code != 0 {
			t.Errorf("exit status %d; stderr: %s", code, c.stderr.String())
		}
		s := parseOTLPSummary(t, c.stderr.String())
		if s.exported != 0 || s.dropped != marks || s.notExported != 0 || s.reasons != fmt.Sprintf("%d export failed: Unavailable", marks) {
			t.Errorf("summary %q: want the %d marked records dropped as export failed: Unavailable", s.line, marks)
		}
	})

	// The queue holds 2 records, both in the failing export: the other
	// marked records are dropped as the queue is full, before the SDK's
	// queue would drop one unseen.
	t.Run("queue full", func(t *testing.T) {
		mark := marker()
		c := startOTLP(t, endpoint, mark, "OTEL_EXPORTER_OTLP_TIMEOUT=2000", queueSizeEnv+"=2")
		runMarks(t, mark)
		waitForDropWarning(t, c, marks)
		if code := c.stopWith(t, syscall.SIGINT); code != 0 {
			t.Errorf("exit status %d; stderr: %s", code, c.stderr.String())
		}
		s := parseOTLPSummary(t, c.stderr.String())
		m := regexp.MustCompile(`^(\d+) export failed: Unavailable, (\d+) export queue full \(` + queueSizeEnv + `=2; raise it\)$`).
			FindStringSubmatch(s.reasons)
		if m == nil || s.dropped != marks || s.exported != 0 || s.notExported != 0 {
			t.Fatalf("summary %q: want the %d marked records dropped, as the export failed and as the queue was full", s.line, marks)
		}
		if failed, _ := strconv.Atoi(m[1]); failed > 2 {
			t.Errorf("summary %q: more records in the failed export than the queue holds", s.line)
		}
	})

	t.Run("interrupted before the export ends", func(t *testing.T) {
		mark := marker()
		c := startOTLP(t, endpoint, mark) // the exporter's timeout, 10 s, outlasts the flush's 5 s
		runMarks(t, mark)
		if code := c.stopWith(t, syscall.SIGINT); code != 0 {
			t.Errorf("exit status %d; stderr: %s", code, c.stderr.String())
		}
		s := parseOTLPSummary(t, c.stderr.String())
		if s.exported != 0 || s.dropped+s.notExported != marks {
			t.Errorf("summary %q: want the %d marked records among the dropped and not exported", s.line, marks)
		}
	})
}

// gatedListener closes every connection while down is set: to the
// exporter the endpoint is unavailable, and the test sees that it tried.
type gatedListener struct {
	net.Listener
	down   atomic.Bool
	closed atomic.Int32
}

func (l *gatedListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil || !l.down.Load() {
			return conn, err
		}
		conn.Close()
		l.closed.Add(1)
	}
}

// The endpoint is down when the first export is tried and comes up within
// the exporter's timeout: the SDK's retry delivers every record, once,
// and the summary counts them as exported, not as dropped.
func TestOTLPLateEndpoint(t *testing.T) {
	testenv.RequireRoot(t)
	l := &gatedListener{Listener: listen(t)}
	l.down.Store(true)
	sink := serveSink(t, l, accept)

	mark := marker()
	c := startOTLP(t, l.Addr().String(), mark, "OTEL_BLRP_SCHEDULE_DELAY=100")
	runMarks(t, mark)
	// Only the marked records are exported, so a connection means an
	// export of them was tried and failed.
	require.Eventually(t, func() bool { return l.closed.Load() > 0 }, waitFor, 10*time.Millisecond,
		"the CLI did not try to export; stderr: %s", c.stderr.String())
	l.down.Store(false)
	// The SDK retries after 5 s (±50%), within its 10 s timeout.
	require.Eventually(t, func() bool { n, _ := sink.count(mark); return n == marks }, 2*waitFor, 50*time.Millisecond,
		"the sink did not receive the %d marked records once up; stderr: %s", marks, c.stderr.String())
	if code := c.stopWith(t, syscall.SIGINT); code != 0 {
		t.Errorf("exit status %d; stderr: %s", code, c.stderr.String())
	}
	if _, dup := sink.count(mark); dup {
		t.Errorf("a record reached the sink twice")
	}
	s := parseOTLPSummary(t, c.stderr.String())
	if s.exported != marks || s.dropped != 0 || s.notExported != 0 {
		t.Errorf("summary %q: want the %d marked records exported, none dropped", s.line, marks)
	}
	if strings.Contains(c.stderr.String(), "OTLP: dropped") {
		t.Errorf("a drop warning though every record was delivered: %s", c.stderr.String())
	}
}

// A sink that refuses the records with a permanent error, and one that
// rejects some of them in a partial success: the refused ones are counted
// as dropped, with the reason, and the accepted ones as exported.
func TestOTLPRefused(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		name   string
		answer func(marks []string) (*collogpb.ExportLogsServiceResponse, error)
		// the marked records that end up exported, and the reason of the others
		exported int
		reason   string
	}{
		{
			name: "InvalidArgument",
			answer: func([]string) (*collogpb.ExportLogsServiceResponse, error) {
				return nil, status.Error(codes.InvalidArgument, "the test sink refuses every record")
			},
			reason: fmt.Sprintf("%d export failed: InvalidArgument", marks),
		},
		{
			name: "partial success",
			answer: func(got []string) (*collogpb.ExportLogsServiceResponse, error) {
				// Reject the records with an odd marker index.
				var rejected int64
				for _, arg := range got {
					if i := strings.LastIndexByte(arg, '-'); i >= 0 && strings.ContainsAny(arg[i+1:], "13579") {
						rejected++
					}
				}
				return &collogpb.ExportLogsServiceResponse{PartialSuccess: &collogpb.ExportLogsPartialSuccess{
					RejectedLogRecords: rejected, ErrorMessage: "odd markers rejected"}}, nil
			},
			exported: marks - marks/2,
			reason:   fmt.Sprintf("%d rejected by the backend (partial success)", marks/2),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t)
			sink := serveSink(t, l, tc.answer)
			mark := marker()
			c := startOTLP(t, l.Addr().String(), mark)
			runMarks(t, mark)
			require.Eventually(t, func() bool { n, _ := sink.count(mark); return n == marks }, waitFor, 20*time.Millisecond,
				"the sink did not receive the %d marked records; stderr: %s", marks, c.stderr.String())
			waitForDropWarning(t, c, marks-tc.exported)
			if code := c.stopWith(t, syscall.SIGINT); code != 0 {
				t.Errorf("exit status %d; stderr: %s", code, c.stderr.String())
			}
			s := parseOTLPSummary(t, c.stderr.String())
			sink.mu.Lock()
			sent, accepted := sink.sent, sink.accepted
			sink.mu.Unlock()
			if s.exported != tc.exported || s.dropped != marks-tc.exported || s.notExported != 0 || s.reasons != tc.reason ||
				s.exported != accepted || s.dropped != sent-accepted {
				t.Errorf("summary %q: want %d exported, %d dropped (%s); the sink was sent %d records and accepted %d",
					s.line, tc.exported, marks-tc.exported, tc.reason, sent, accepted)
			}
		})
	}
}

func TestOTLP(t *testing.T) {
	collector := collectortest.Binary(t)
	port, outFile := collectortest.StartSink(t, collector, "logs")
	endpoint := fmt.Sprintf("127.0.0.1:%d", port)

	c := startCLI(t, "--otlp", "--otlp-endpoint", endpoint, "--otlp-insecure", "--quiet")
	mark := marker()
	cmd := runMarked(t, "/bin/sh", "-c", "exit 0", mark)
	assertStoppedCleanly(t, c, c.stop(t))
	if s := parseOTLPSummary(t, c.stderr.String()); s.exported == 0 || s.dropped != 0 || s.notExported != 0 {
		t.Errorf("summary %q: want records exported, none dropped; stderr: %s", s.line, c.stderr.String())
	}

	wantArgs := []any{"/bin/sh", "-c", "exit 0", mark}
	deadline := time.Now().Add(waitFor)
	for {
		found := false
		collectortest.EachLogRecord(outFile, func(rl plog.ResourceLogs, sl plog.ScopeLogs, rec plog.LogRecord) {
			attr := func(k string) any { return collectortest.Attr(rec.Attributes(), k) }
			if found || rec.EventName() != procattr.EventExec || attr(procattr.ProcessPID) != int64(cmd.Process.Pid) {
				return
			}
			if args, _ := attr(procattr.ProcessCommandArgs).([]any); !slices.Equal(args, wantArgs) {
				return
			}
			found = true
			if rec.SeverityText() != "INFO" || rec.SeverityNumber() != plog.SeverityNumberInfo ||
				rec.Body().Str() != "/bin/sh -c 'exit 0' "+mark || rec.Timestamp() == 0 || rec.ObservedTimestamp() == 0 {
				t.Errorf("record %v", rec.Body().AsRaw())
			}
			if sl.Scope().Name() != scopeName {
				t.Errorf("scope %q, want %q", sl.Scope().Name(), scopeName)
			}
			res := rl.Resource().Attributes()
			if collectortest.Attr(res, "service.name") != "execsnoop" || collectortest.Attr(res, "host.name") == nil {
				t.Errorf("resource %v", res.AsRaw())
			}
			if attr(procattr.ProcessParentPID) != int64(os.Getpid()) || attr(procattr.ExecFilename) != "/bin/sh" ||
				attr(procattr.ProcessArgsCount) != int64(4) || attr(procattr.ExecSyscall) != "execve" {
				t.Errorf("attributes %v", rec.Attributes().AsRaw())
			}
		})
		if found {
			return
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(outFile)
			t.Fatalf("no exec record of pid %d with %q in the collector's output within %s:\n%.4000s",
				cmd.Process.Pid, wantArgs, waitFor, data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
