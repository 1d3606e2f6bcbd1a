// Command execsnoop traces process execs (and optionally exits) with eBPF,
// like libbpf-tools' execsnoop, and prints them as a table or JSON lines or
// exports them as OpenTelemetry log records over OTLP/gRPC. Every attribute
// name and value comes from internal/procattr, the mapping the collector
// receiver uses, so its JSON and OTLP output equal the receiver's records.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/cgroup"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/redact"
)

const (
	// shutdownTimeout bounds flushing the OTLP export at exit.
	shutdownTimeout = 5 * time.Second
	// lostWarnEvery rate-limits the lost-events warning and the reading of
	// the loss counters (a few bpf(2) calls) behind it.
	lostWarnEvery = time.Second
	// defaultDrainPeriod is how often a burst's events are printed. Each
	// drain costs the Go runtime several thread switches, so it, not the
	// events, is most of the CLI's CPU; 200 ms is still live to a reader,
	// and a lone exec is printed at once (an idle buffer wakes the reader).
	defaultDrainPeriod = 200 * time.Millisecond
	// maxTrackedPIDs bounds the set of pids -l matched (for their exits).
	maxTrackedPIDs = 1 << 16
)

// config is the parsed command line.
type config struct {
	opts bpf.Options

	name, line string // user-space filters (-n, -l)

	printTime      bool // -T
	printTimestamp bool // -t
	printUID       bool // -U
	quote          bool // -q

	json  bool
	quiet bool

	probeReport bool // --probe-report: print what this kernel supports, then exit

	otlp         bool
	otlpEndpoint string
	otlpInsecure bool

	// Redaction of --json and --otlp output, as in the receiver.
	noRedact       bool
	redactPatterns []string
}

// errUsage marks command-line errors (exit status 2).
type errUsage struct{ err error }

func (e errUsage) Error() string { return e.err.Error() }

func main() {
	// One goroutine reads and prints; more Ps only add cross-thread
	// wakeups to every drain. An explicit GOMAXPROCS still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without os.Exit; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "execsnoop: %s (see execsnoop --help)\n", oneLine(err))
		return 2
	}

	// Signals are caught from the start, so that one arriving while the
	// probe loads still ends the program in order.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	mapper := &procattr.Mapper{}
	if cfg.json || cfg.otlp {
		if root, err := cgroup.V2Root(); err == nil {
			mapper.Cgroups = cgroup.NewResolver(root)
			defer mapper.Cgroups.Close()
		}
		if !cfg.noRedact {
			// parseFlags compiled the patterns once already.
			mapper.Redactor, _ = redact.New(cfg.redactPatterns)
		}
	}

	var exporter *otlpOutput
	if cfg.otlp {
		exporter, err = newOTLPOutput(context.Background(), cfg, mapper, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "execsnoop: OTLP exporter: %s\n", oneLine(err))
			return 1
		}
	}

	probe, err := bpf.Open(cfg.opts)
	if err != nil {
		fmt.Fprintf(stderr, "execsnoop: %s\n", oneLine(err))
		if exporter != nil {
			exporter.shutdown(stderr)
		}
		return 1
	}
	if cfg.probeReport {
		return printProbeReport(probe, stdout, stderr)
	}
	fmt.Fprintf(stderr, "execsnoop: %s\n", probe.KernelReport())

	out := bufio.NewWriterSize(stdout, 64<<10)
	var printer eventWriter
	switch {
	case cfg.quiet:
	case cfg.json:
		printer = newJSONWriter(out, mapper)
	default:
		printer = newTableWriter(out, cfg, time.Now())
	}
	if t, ok := printer.(*tableWriter); ok {
		t.header()
	}
	if err := out.Flush(); err != nil {
		probe.Close()
		fmt.Fprintf(stderr, "execsnoop: writing the output: %s\n", oneLine(err))
		return 1
	}
	fmt.Fprintf(stderr, "execsnoop: tracing execs (%s buffer, %d bytes)... Hit Ctrl-C to end.\n",
		probe.Transport(), bufferSize(cfg.opts))

	// The first signal stops the probe: it detaches, and what the kernel
	// buffer still holds is read and reported before Read ends; a second
	// signal closes it at once.
	loopDone := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		for _, stop := range []func() error{probe.Stop, probe.Close} {
			select {
			case <-sigs:
				_ = stop()
			case <-loopDone:
				return
			}
		}
	})

	l := loop{cfg: cfg, probe: probe, out: out, printer: printer, otlp: exporter, stderr: stderr}
	status := l.run()
	close(loopDone)
	watcher.Wait()
	probe.Close()
	go func() {
		// Flushing the export can take seconds: a signal now ends it.
		<-sigs
		fmt.Fprintln(stderr, "execsnoop: interrupted; exiting without flushing")
		os.Exit(1)
	}()

	var records string
	if exporter != nil {
		pendingAs := "not exported at exit"
		if exporter.shutdown(stderr) {
			pendingAs += fmt.Sprintf(" (the flush gave up after %s)", shutdownTimeout)
		}
		counts := exporter.acct.final()
		records = "; OTLP records: " + counts.balance(pendingAs)
	}
	stats := probe.Stats()
	l.warnLost(stats)
	summary := fmt.Sprintf("execsnoop: %d events seen, %d lost", l.seen, stats.Lost())
	if stats.DecodeErrors > 0 {
		summary += fmt.Sprintf(", %d undecodable", stats.DecodeErrors)
	}
	fmt.Fprintln(stderr, summary+records)
	return status
}

// eventWriter prints one event into the buffered output.
type eventWriter interface {
	write(ev *bpf.Event) error
}

// loop is the reading loop and its counters.
type loop struct {
	cfg     *config
	probe   *bpf.Probe
	out     *bufio.Writer
	printer eventWriter
	otlp    *otlpOutput
	stderr  io.Writer

	seen       uint64
	matched    map[uint32]struct{} // pids whose exec matched -l, for their exits
	lostSeen   uint64              // the lost total at the last warning
	lostReadAt time.Time           // when the loss counters were last read
}

func (l *loop) run() int {
	var ev bpf.Event
	if l.cfg.line != "" {
		l.matched = make(map[uint32]struct{})
	}
	for {
		err := l.probe.Read(&ev)
		switch {
		case err == nil:
			l.seen++
			if !l.keep(&ev) {
				if l.otlp != nil {
					l.otlp.acct.filter()
				}
				continue
			}
			// Exported before printed: every event seen is accounted for
			// in the OTLP records even when printing fails.
			if l.otlp != nil {
				l.otlp.emit(&ev, time.Now())
			}
			if l.printer != nil {
				if err := l.printer.write(&ev); err != nil {
					fmt.Fprintf(l.stderr, "execsnoop: writing the output: %s\n", oneLine(err))
					return 1
				}
			}
		case errors.Is(err, bpf.ErrDrained):
			if err := l.out.Flush(); err != nil {
				fmt.Fprintf(l.stderr, "execsnoop: writing the output: %s\n", oneLine(err))
				return 1
			}
			if now := time.Now(); now.Sub(l.lostReadAt) >= lostWarnEvery {
				l.lostReadAt = now
				l.warnLost(l.probe.Stats())
			}
		case errors.Is(err, bpf.ErrClosed):
			return l.finish()
		default:
			l.finish()
			fmt.Fprintf(l.stderr, "execsnoop: reading events: %s\n", oneLine(err))
			return 1
		}
	}
}

func (l *loop) finish() int {
	if err := l.out.Flush(); err != nil {
		fmt.Fprintf(l.stderr, "execsnoop: writing the output: %s\n", oneLine(err))
		return 1
	}
	return 0
}

// keep applies the user-space filters -n and -l.
func (l *loop) keep(ev *bpf.Event) bool {
	if l.cfg.name != "" && !strings.Contains(ev.Comm, l.cfg.name) {
		return false
	}
	if l.cfg.line == "" {
		return true
	}
	switch ev.Kind {
	case bpf.KindExec:
		if !argsContain(ev.Args, l.cfg.line) {
			delete(l.matched, ev.PID) // a later exec of a matched process
			return false
		}
		if len(l.matched) >= maxTrackedPIDs {
			clear(l.matched) // exits were lost; do not grow without bound
		}
		l.matched[ev.PID] = struct{}{}
		return true
	case bpf.KindExit:
		// An exit has no arguments: keep it when its exec matched.
		_, ok := l.matched[ev.PID]
		delete(l.matched, ev.PID)
		return ok
	}
	return false
}

// argsContain reports whether the command line (the arguments joined by
// spaces) contains s.
func argsContain(args []string, s string) bool {
	for _, a := range args {
		if strings.Contains(a, s) {
			return true
		}
	}
	return strings.Contains(s, " ") && strings.Contains(strings.Join(args, " "), s)
}

// warnLost prints how many events the kernel dropped since the last
// warning. The reading loop calls it at most once per lostWarnEvery.
func (l *loop) warnLost(s bpf.Stats) {
	total := s.Lost()
	if total <= l.lostSeen {
		return
	}
	fmt.Fprintf(l.stderr, "execsnoop: lost %d events (total %d): buffer full (%s, %d bytes); raise --buffer-size\n",
		total-l.lostSeen, total, l.probe.Transport(), bufferSize(l.cfg.opts))
	l.lostSeen = total
}

func bufferSize(o bpf.Options) int {
	if o.BufferSize == 0 {
		return bpf.DefaultBufferSize
	}
	return o.BufferSize
}

// oneLine joins the lines of a (joined) error into one.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

const usageText = `Usage: execsnoop [OPTIONS]

Trace process execs system-wide with eBPF, like libbpf-tools' execsnoop, and
print them as a table (the default) or JSON lines, or export them as
OpenTelemetry log records over OTLP/gRPC. Needs root, or CAP_BPF and
CAP_PERFMON. execsnoop leaves out its own process and its descendants.

Columns: PCOMM is the process name after the exec, PID and PPID the process
and its parent, RET 0 or -errno of a failed exec (-x), ARGS the arguments.
With --exits, a process's exit is a row whose RET is the exit code as a shell
reports it (128+signal when killed) and whose ARGS read e.g.
"[exit status 3 after 1.20s, cpu 0.95s, max rss 12.3 MiB]" or
"[killed by SIGKILL after 0.05s, cpu 0.01s, max rss 1.2 MiB]": the lifetime,
the CPU time (user and system, all threads) and the peak resident memory.

Filters: -x, -u and -c apply in the kernel; -n and -l in execsnoop.

Options:
  -T, --time               include a TIME column (HH:MM:SS, local time)
  -t, --timestamp          include a TIME(s) column: seconds since execsnoop started
  -U, --print-uid          include a UID column (the effective uid)
  -x, --fails              include failed execs (RET is -errno, e.g. -2 for ENOENT)
  -u, --uid UID            trace only this real uid (repeat for more uids)
  -n, --name NAME          only processes whose name (comm) contains NAME
  -l, --line LINE          only execs whose command line (the arguments joined
                           by spaces) contains LINE; with --exits also their exits
  -c, --cgroup PATH        only processes in this cgroup v2 directory or below,
                           e.g. /sys/fs/cgroup/system.slice (on a host with
                           the hybrid layout: /sys/fs/cgroup/unified/...)
  -q, --quote              shell-quote the arguments, so that spaces, empty
                           arguments, newlines and other bytes are unambiguous:
                           the ARGS column is a POSIX shell command line
                           (a cut argument list ends in a "# truncated" comment)
      --max-args N         keep at most N arguments of an exec (default %d)
      --max-bytes N        argv byte budget of one exec, at most %d (default %d)
      --exits              also report process exits
      --buffer TYPE        kernel-to-user transport: auto, ringbuf (Linux 5.8+)
                           or perf (default auto)
      --failed-exec-hook HOOK
                           how -x catches failed execs: fexit (only the exec
                           path pays; on kernels before 6.7 without the
                           syscall functions in BTF, errors before the new
                           image is opened, such as E2BIG, are not seen), sys_exit (every
                           syscall's exit: sees every failure, costs every
                           syscall) or auto: fexit where the kernel allows it
                           (default auto)
      --probe-report       load the probe with -x, --exits and the lookup of
                           TRACEPARENT (which the CLI does not otherwise use),
                           print what this kernel supports as one JSON line,
                           and exit
      --buffer-size BYTES  buffer size, for perf the total over all CPUs
                           (default %d); raise it when events are lost
      --drain-period DURATION
                           while events keep coming, print them at most this
                           often (default %s, at most %s); with the ring
                           buffer the first event after a quiet spell is
                           printed at once. Shorter costs more CPU, and the
                           buffer must hold one period of events
      --json               print one JSON object per event and line instead of
                           the table (see below)
      --otlp               export every event as an OpenTelemetry log record
                           over OTLP/gRPC (see below)
      --otlp-endpoint HOST:PORT
                           the OTLP/gRPC endpoint (default: the environment,
                           else localhost:4317); a URL such as
                           http://host:4317 is accepted too
      --otlp-insecure      connect without TLS
      --quiet              print no table or JSON (e.g. with --otlp)
      --redact REGEXP      also mask matches of REGEXP (its group named "v",
                           or the whole match) in --json and --otlp output;
                           repeatable
      --no-redact          do not mask secrets in --json and --otlp output
  -h, --help               show this help

JSON (--json): one object per line:
  {"time": RFC 3339 time, "event": "process.exec" or "process.exit",
   "severity": "INFO" or "WARN" (a failed exec), "body": a line for people,
   "resource": {"container.id": ID, "k8s.pod.uid": UID} (only in a container;
   the uid only in a Kubernetes pod),
   "attributes": {OpenTelemetry attributes: "process.pid", "process.parent_pid",
   "process.command_args" (an array), "process.executable.path", ...;
   exits add what the process used: "execsnoop.process.cpu.time.user" and
   "execsnoop.process.cpu.time.system" (seconds), "execsnoop.process.memory.peak"
   (bytes), "execsnoop.process.paging.faults.minor"/".major",
   "execsnoop.process.context_switches.voluntary"/".involuntary",
   "execsnoop.process.disk.io.read"/".write" (bytes)}}
  The names and values are those of the collector's execsnoop receiver.
  As there, secrets in arguments (--password=..., TOKEN=..., Bearer ...,
  user:password@ in URLs, well-known key formats) are masked as ****, and
  "execsnoop.args.redacted" is true; the table shows arguments as they are.
  Arguments that are not valid UTF-8 are escaped without loss (each invalid
  byte as \xNN, each backslash as \\) and "execsnoop.args.escaped" is true.

OTLP (--otlp): log records with the receiver's event names, bodies,
severities and attributes; container.id is a resource attribute, next to
service.name=execsnoop and host.name. The exporter also reads the standard
variables OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_INSECURE (and their _LOGS_
forms), OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES. Arguments that are not
valid UTF-8 are escaped as in --json (protobuf requires UTF-8).

Lost events are reported on stderr as they happen; at the end (Ctrl-C or
SIGTERM) execsnoop prints how many events it saw and lost. With --otlp,
records the export drops are reported as they are dropped, and the end adds
where every event seen went, in records: seen = exported + dropped (export
failed after the exporter's retries, with its gRPC code; rejected by the
backend in a partial success; export queue full, OTEL_BLRP_MAX_QUEUE_SIZE)
+ not exported at exit + filtered by -n/-l.

Examples:
  execsnoop                       # trace all successful execs
  execsnoop -x                    # include failed execs
  execsnoop -T -U                 # with a time and a uid column
  execsnoop -t                    # with seconds since start
  execsnoop -u 1000               # only uid 1000
  execsnoop -n bash               # only processes whose name contains "bash"
  execsnoop -l testpkg            # only command lines containing "testpkg"
  execsnoop -q                    # shell-quote the arguments
  execsnoop -c /sys/fs/cgroup/system.slice/docker.service
                                  # only processes in this cgroup
  execsnoop --exits               # also show exits, with status and lifetime
  execsnoop --json | jq .         # JSON lines
  execsnoop --otlp --otlp-endpoint localhost:4317 --otlp-insecure --quiet
                                  # export to a local collector only
`

// parseFlags parses the command line; it prints the help to stdout and
// returns flag.ErrHelp for -h.
func parseFlags(args []string, stdout io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("execsnoop", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	boolVar := func(p *bool, names ...string) {
		for _, n := range names {
			fs.BoolVar(p, n, false, "")
		}
	}
	stringVar := func(p *string, value string, names ...string) {
		for _, n := range names {
			fs.StringVar(p, n, value, "")
		}
	}
	var fails, exits bool
	boolVar(&cfg.printTime, "T", "time")
	boolVar(&cfg.printTimestamp, "t", "timestamp")
	boolVar(&cfg.printUID, "U", "print-uid")
	boolVar(&fails, "x", "fails")
	boolVar(&cfg.quote, "q", "quote")
	boolVar(&exits, "exits")
	boolVar(&cfg.json, "json")
	boolVar(&cfg.quiet, "quiet")
	boolVar(&cfg.otlp, "otlp")
	boolVar(&cfg.otlpInsecure, "otlp-insecure")
	boolVar(&cfg.noRedact, "no-redact")
	boolVar(&cfg.probeReport, "probe-report")
	var hook string
	stringVar(&hook, string(bpf.HookAuto), "failed-exec-hook")
	fs.Func("redact", "", func(s string) error {
		cfg.redactPatterns = append(cfg.redactPatterns, s)
		return nil
	})
	stringVar(&cfg.name, "", "n", "name")
	stringVar(&cfg.line, "", "l", "line")
	stringVar(&cfg.opts.CgroupPath, "", "c", "cgroup")
	stringVar(&cfg.otlpEndpoint, "", "otlp-endpoint")
	var transport string
	stringVar(&transport, string(bpf.TransportAuto), "buffer")
	uidFlag := func(s string) error {
		uid, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return fmt.Errorf("not a uid: %q", s)
		}
		cfg.opts.UIDs = append(cfg.opts.UIDs, uint32(uid))
		return nil
	}
	fs.Func("u", "", uidFlag)
	fs.Func("uid", "", uidFlag)
	sizeFlag := func(p *int, what string) func(string) error {
		return func(s string) error {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return fmt.Errorf("%s must be a positive number, not %q", what, s)
			}
			*p = n
			return nil
		}
	}
	fs.Func("max-args", "", sizeFlag(&cfg.opts.MaxArgs, "--max-args"))
	fs.Func("max-bytes", "", sizeFlag(&cfg.opts.ArgsSize, "--max-bytes"))
	fs.Func("buffer-size", "", sizeFlag(&cfg.opts.BufferSize, "--buffer-size"))
	cfg.opts.DrainPeriod = defaultDrainPeriod
	fs.Func("drain-period", "", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > bpf.MaxDrainPeriod {
			return fmt.Errorf("--drain-period must be a duration such as 50ms, above 0 and at most %s, not %q", bpf.MaxDrainPeriod, s)
		}
		cfg.opts.DrainPeriod = d
		return nil
	})
	var help bool
	boolVar(&help, "h", "help")

	if err := fs.Parse(expandShortFlags(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help = true
		} else {
			return nil, errUsage{err}
		}
	}
	if help {
		fmt.Fprintf(stdout, usageText, bpf.DefaultMaxArgs, bpf.MaxArgsSize, bpf.DefaultArgsSize, bpf.DefaultBufferSize, defaultDrainPeriod, bpf.MaxDrainPeriod)
		return nil, flag.ErrHelp
	}
	if fs.NArg() > 0 {
		return nil, errUsage{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}

	cfg.opts.Transport = bpf.Transport(transport)
	cfg.opts.FailedExecHook = bpf.FailedExecHook(hook)
	cfg.opts.Exits = exits || cfg.probeReport
	// The report covers the receiver's trace-context lookup too.
	cfg.opts.TraceContext = cfg.probeReport
	cfg.opts.FailedExecs = bpf.FailedExecsExclude
	if fails || cfg.probeReport {
		cfg.opts.FailedExecs = bpf.FailedExecsInclude
	}
	cfg.opts.ExcludeSelf = true
	if cfg.opts.CgroupPath != "" && !strings.HasPrefix(cfg.opts.CgroupPath, "/") {
		return nil, errUsage{fmt.Errorf("-c %s: give the absolute path of a cgroup v2 directory, e.g. /sys/fs/cgroup/system.slice", cfg.opts.CgroupPath)}
	}
	if cfg.otlpEndpoint != "" && !cfg.otlp {
		return nil, errUsage{errors.New("--otlp-endpoint needs --otlp")}
	}
	if err := cfg.opts.Validate(); err != nil {
		return nil, errUsage{err}
	}
	if _, err := redact.New(cfg.redactPatterns); err != nil {
		return nil, errUsage{fmt.Errorf("--redact: %w", err)}
	}
	if cfg.noRedact && len(cfg.redactPatterns) > 0 {
		return nil, errUsage{errors.New("--redact and --no-redact exclude each other")}
	}
	return cfg, nil
}

// combinedShort matches clustered classic short flags such as -xTU.
var combinedShort = regexp.MustCompile(`^-[TtUxq]{2,}$`)

// valueFlags are the flags that take the next argument as their value.
var valueFlags = map[string]bool{
	"u": true, "uid": true, "n": true, "name": true, "l": true, "line": true, "c": true, "cgroup": true,
	"max-args": true, "max-bytes": true, "redact": true, "buffer": true, "buffer-size": true, "otlp-endpoint": true,
	"drain-period": true, "failed-exec-hook": true,
}

// expandShortFlags turns -xT into -x -T (before a "--", and not where a
// flag's value is expected).
func expandShortFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if name := strings.TrimLeft(a, "-"); name != a && valueFlags[name] && i+1 < len(args) {
			out = append(out, a, args[i+1])
			i++
			continue
		}
		if combinedShort.MatchString(a) {
			for _, c := range a[1:] {
				out = append(out, "-"+string(c))
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

// printProbeReport prints what Open chose for this kernel as one JSON line
// (the kernel matrix in make test-kernels reads it) and closes the probe.
func printProbeReport(probe *bpf.Probe, stdout, stderr io.Writer) int {
	report := probe.KernelReport()
	if err := probe.Close(); err != nil {
		fmt.Fprintf(stderr, "execsnoop: closing the probe: %s\n", oneLine(err))
		return 1
	}
	line, err := json.Marshal(report)
	if err == nil {
		_, err = fmt.Fprintf(stdout, "%s\n", line)
	}
	if err != nil {
		fmt.Fprintf(stderr, "execsnoop: writing the report: %s\n", oneLine(err))
		return 1
	}
	return 0
}
