package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/proctable"
	"github.com/otelexecsnoop/execsnoop/internal/redact"
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

	// --executable-file: the receiver's executable_file group.
	executableFile bool

	// Executable hashing of --json and --otlp exec records, as the
	// receiver's executable.hash: --no-hash, --hash-max-size.
	noHash      bool
	hashMaxSize int
	hashMaxWait time.Duration // 0: the drain period
	// exits: --exits, print exit records (opts.Exits may load the exit
	// program for the process table alone).
	exits bool
	// --exec-context and --max-ancestors: the receiver's exec_context
	// and lineage.max_ancestors, for --json and --otlp.
	execContext  []string
	groups       procattr.Group
	maxAncestors int
}

// lineage reports whether records carry the lineage group, which needs the
// process table: only --json and --otlp print it.
func (c *config) lineage() bool {
	return (c.json || c.otlp) && c.groups&procattr.GroupLineage != 0
}

// errUsage marks command-line errors (exit status 2).
type errUsage struct{ err error }

func (e errUsage) Error() string { return e.err.Error() }

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
      --executable-file    add the inode, owner, mode and times of the file
                           that ran to --json and --otlp exec records
      --no-hash            do not hash the file each exec ran (--json and
                           --otlp records carry its sha256, GNU and Go build
                           ids and htlhash by default; a record waits for
                           its hash one drain period at most)
      --hash-max-size BYTES
                           files larger than this get no sha256 (default
                           %d)
      --hash-max-wait DURATION
                           the longest an exec waits for its hash before it
                           is printed with hash.missing "timeout" (default
                           0s: the drain period; at most %s)
      --exec-context GROUPS
                           the attribute groups of --json and --otlp exec
                           records, comma-separated: credentials, lineage
                           (the parent and ancestors), session; "" for none
                           (default credentials,lineage,session). lineage
                           loads the fork and exit programs
      --max-ancestors N    ancestors named per --json and --otlp exec record,
                           the parent first, at most %d (default %d; 0: none)
  -h, --help               show this help

JSON (--json): one object per line:
  {"time": RFC 3339 time, "event": "process.exec" or "process.exit",
   "severity": "INFO" or "WARN" (a failed exec), "body": a line for people,
   "resource": {"container.id": ID, "k8s.pod.uid": UID} (only in a container;
   the uid only in a Kubernetes pod),
   "attributes": {OpenTelemetry attributes: "process.pid", "process.parent_pid",
   "process.command_args" (an array), "process.executable.path" (the file
   the kernel runs: for a script, its interpreter), "execsnoop.exec.filename"
   (the name as passed), "process.working_directory", ...;
   exits add what the process used: "execsnoop.process.cpu.time.user" and
   "execsnoop.process.cpu.time.system" (seconds), "execsnoop.process.memory.peak"
   (bytes), "execsnoop.process.paging.faults.minor"/".major",
   "execsnoop.process.context_switches.voluntary"/".involuntary",
   "execsnoop.process.disk.io.read"/".write" (bytes);
   lineage: "execsnoop.parent.executable.path", "execsnoop.parent.command_args",
   "execsnoop.ancestors.pid", "execsnoop.ancestors.executable.name",
   "execsnoop.parent.source" (exec, procfs or unknown)}}
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
SIGTERM) execsnoop prints how many events it saw and lost (and, with the
lineage group, how many processes the full process table dropped). With --otlp,
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
	var fails bool
	boolVar(&cfg.printTime, "T", "time")
	boolVar(&cfg.printTimestamp, "t", "timestamp")
	boolVar(&cfg.printUID, "U", "print-uid")
	boolVar(&fails, "x", "fails")
	boolVar(&cfg.quote, "q", "quote")
	boolVar(&cfg.exits, "exits")
	boolVar(&cfg.json, "json")
	boolVar(&cfg.quiet, "quiet")
	boolVar(&cfg.otlp, "otlp")
	boolVar(&cfg.otlpInsecure, "otlp-insecure")
	boolVar(&cfg.noRedact, "no-redact")
	boolVar(&cfg.executableFile, "executable-file")
	boolVar(&cfg.noHash, "no-hash")
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
	cfg.execContext = slices.Clone(procattr.GroupNames)
	fs.Func("exec-context", "", func(s string) error {
		cfg.execContext = nil
		if s != "" {
			cfg.execContext = strings.Split(s, ",")
		}
		_, err := procattr.ParseGroups(cfg.execContext)
		return err
	})
	cfg.maxAncestors = proctable.DefaultMaxAncestors
	fs.Func("max-ancestors", "", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > proctable.MaxMaxAncestors {
			return fmt.Errorf("--max-ancestors must be a number from 0 to %d, not %q", proctable.MaxMaxAncestors, s)
		}
		cfg.maxAncestors = n
		return nil
	})
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
	cfg.hashMaxSize = exehash.DefaultMaxSize
	fs.Func("hash-max-size", "", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > exehash.MaxSize {
			return fmt.Errorf("--hash-max-size must be a number of bytes between 1 and %d, not %q", int64(exehash.MaxSize), s)
		}
		cfg.hashMaxSize = int(n)
		return nil
	})
	fs.Func("hash-max-wait", "", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > maxHashWait {
			return fmt.Errorf("--hash-max-wait must be a duration such as 1s, from 0 (the drain period) to %s, not %q", maxHashWait, s)
		}
		cfg.hashMaxWait = d
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
		fmt.Fprintf(stdout, usageText, bpf.DefaultMaxArgs, bpf.MaxArgsSize, bpf.DefaultArgsSize, bpf.DefaultBufferSize, defaultDrainPeriod, bpf.MaxDrainPeriod,
			exehash.DefaultMaxSize, maxHashWait, proctable.MaxMaxAncestors, proctable.DefaultMaxAncestors)
		return nil, flag.ErrHelp
	}
	if fs.NArg() > 0 {
		return nil, errUsage{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}

	cfg.opts.Transport = bpf.Transport(transport)
	cfg.opts.FailedExecHook = bpf.FailedExecHook(hook)
	cfg.groups, _ = procattr.ParseGroups(cfg.execContext)
	// The process table learns a process at its fork and forgets it at
	// its exit; exits are printed only with --exits.
	cfg.opts.Exits = cfg.exits || cfg.probeReport || cfg.lineage()
	cfg.opts.Forks = cfg.lineage()
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
	"drain-period": true, "failed-exec-hook": true, "hash-max-size": true,
	"hash-max-wait": true, "exec-context": true, "max-ancestors": true,
}

// maxHashWait is the receiver's bound of executable.hash.max_wait.
const maxHashWait = time.Minute

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
