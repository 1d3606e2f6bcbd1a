package execsnoopreceiver // import "github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/confmap"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/proctable"
	"github.com/otelexecsnoop/execsnoop/internal/redact"
)

// Config is the execsnoop receiver's configuration.
type Config struct {
	Buffer BufferConfig `mapstructure:"buffer"`
	Args   ArgsConfig   `mapstructure:"args"`
	// FailedExecs selects execs by outcome: include (default), exclude or only.
	FailedExecs string `mapstructure:"failed_execs"`
	// FailedExecHook is how failed execs are caught: auto (default: fexit
	// where the kernel allows it, else sys_exit), fexit or sys_exit.
	FailedExecHook string `mapstructure:"failed_exec_hook"`
	// Exits turns on a record for every process exit.
	Exits bool `mapstructure:"exits"`
	// ExecutableFile adds the executable_file attribute group to exec
	// records: the inode, owner, mode and times of the file that ran.
	ExecutableFile bool `mapstructure:"executable_file"`
	// Executable configures what is read of the file an exec ran.
	Executable ExecutableConfig `mapstructure:"executable"`
	// ExecContext lists the attribute groups exec records carry:
	// credentials (real and saved ids, capabilities, privileges gained),
	// lineage (parent and ancestors) and session (session, group,
	// terminal, audit session, vpid). All by default.
	ExecContext []string        `mapstructure:"exec_context"`
	Lineage     LineageConfig   `mapstructure:"lineage"`
	Filters     FiltersConfig   `mapstructure:"filters"`
	Redaction   RedactionConfig `mapstructure:"redaction"`
	Batch       BatchConfig     `mapstructure:"batch"`
	// Traces configures process spans, used when the receiver is in a
	// traces pipeline.
	Traces TracesConfig `mapstructure:"traces"`
}

// LineageConfig bounds the process table behind the lineage group.
type LineageConfig struct {
	// MaxAncestors is how many ancestors an exec record names, the parent
	// first; 0 names none (the parent's path and arguments stay).
	MaxAncestors int `mapstructure:"max_ancestors"`
	// ParentArgsBytes bounds execsnoop.parent.command_args (each argument
	// counts with its NUL, as argv in memory); 0 leaves it out.
	ParentArgsBytes int `mapstructure:"parent_args_bytes"`
	// MaxProcesses caps the processes the table holds (alive at once);
	// past it the oldest is dropped (and counted).
	MaxProcesses int `mapstructure:"max_processes"`
}

// TracesConfig decides which processes start traces and bounds memory.
type TracesConfig struct {
	// Roots are glob patterns (* matches anything) on the executable name
	// or on the command line with that name first ("make", "bash ci.sh*",
	// "cron"): a process whose parent is not traced starts a trace only if
	// it matches one. "*" makes every such process a root.
	Roots []string `mapstructure:"roots"`
	// MaxOpenSpans caps the processes tracked at once; past it the oldest
	// open span is dropped (and counted).
	MaxOpenSpans int `mapstructure:"max_open_spans"`
	// AdoptRunning opens spans at start-up for the processes already
	// running (read from /proc), so that children of a shell started
	// before the collector join that shell's trace.
	AdoptRunning bool `mapstructure:"adopt_running"`
	// ContextFromEnv joins a process's span to the trace its caller handed
	// it in the TRACEPARENT (and TRACESTATE) environment variables, as CI
	// systems do: the kernel reads them at exec. On by default; it costs
	// nothing when the receiver is in no traces pipeline.
	ContextFromEnv bool `mapstructure:"context_from_env"`
	// EnvScanBytes is how many bytes of a new image's environment are
	// searched for them (default 32 KiB, at most 60 KiB).
	EnvScanBytes int `mapstructure:"env_scan_bytes"`
}

// ExecutableConfig is what user space reads of the file an exec ran.
type ExecutableConfig struct {
	Hash HashConfig `mapstructure:"hash"`
}

// HashConfig identifies each executable by its content (internal/exehash):
// its sha256, GNU and Go build ids and htlhash, once per file version.
type HashConfig struct {
	// Enabled turns it on (default). Reading another user's process's
	// file through /proc/PID/exe needs CAP_SYS_PTRACE.
	Enabled bool `mapstructure:"enabled"`
	// MaxSize: larger files get no sha256 (hash.missing: too_large).
	MaxSize int `mapstructure:"max_size"`
	// MaxWait is the longest a record waits for its hash before it goes
	// out with hash.missing: timeout; 0 means batch.flush_interval.
	MaxWait time.Duration `mapstructure:"max_wait"`
	// CacheEntries bounds the files whose identity is remembered.
	CacheEntries int `mapstructure:"cache_entries"`
}

// hashWait is MaxWait with its default applied.
func (c *Config) hashWait() time.Duration {
	if c.Executable.Hash.MaxWait == 0 {
		return c.Batch.FlushInterval
	}
	return c.Executable.Hash.MaxWait
}

// RedactionConfig masks secrets in argv (and in the body built from it).
type RedactionConfig struct {
	// Enabled turns on the built-in rules (on by default).
	Enabled bool `mapstructure:"enabled"`
	// Patterns are extra regular expressions; each masks its group named
	// "v", or its whole match.
	Patterns []string `mapstructure:"patterns"`
}

// BufferConfig is the kernel-to-user-space transport.
type BufferConfig struct {
	// Type is auto (ring buffer when the kernel has it), ringbuf or perf.
	Type string `mapstructure:"type"`
	// Size in bytes: the ring buffer's size, or perf's over all CPUs.
	Size int `mapstructure:"size"`
	// DrainPeriod bounds delivery latency: while records keep coming the
	// buffer is drained this often, so it must hold one period of events.
	// An idle ring buffer wakes the reader for its first record instead.
	DrainPeriod time.Duration `mapstructure:"drain_period"`
}

// ArgsConfig limits how much of argv is kept of each exec.
type ArgsConfig struct {
	MaxBytes int `mapstructure:"max_bytes"`
	MaxCount int `mapstructure:"max_count"`
}

// FiltersConfig drops events; uids, cgroup and exclude_self in the kernel.
// uids matches the real uid (as libbpf-tools' execsnoop -u), not the
// effective one that process.user.id reports.
type FiltersConfig struct {
	UIDs []uint32 `mapstructure:"uids"`
	// Cgroup keeps processes in this cgroup v2 directory and below it.
	Cgroup string `mapstructure:"cgroup"`
	// IncludeComms and ExcludeComms are glob patterns (path.Match) on the
	// command name (comm); an event is kept if it matches an include
	// pattern (or there are none) and no exclude pattern.
	IncludeComms []string `mapstructure:"include_comms"`
	ExcludeComms []string `mapstructure:"exclude_comms"`
	// ExcludeSelf drops the events of the collector and its children.
	ExcludeSelf bool `mapstructure:"exclude_self"`
}

// BatchConfig sends a batch to the next consumer when either limit is hit.
type BatchConfig struct {
	MaxSize       int           `mapstructure:"max_size"`
	FlushInterval time.Duration `mapstructure:"flush_interval"`
}

const (
	defaultBatchSize     = 1024
	defaultFlushInterval = 200 * time.Millisecond
	maxFlushInterval     = time.Minute
	defaultMaxOpenSpans  = 10000
	maxHashSize          = exehash.MaxSize
	maxHashWait          = time.Minute
)

func createDefaultConfig() *Config {
	return &Config{
		Buffer: BufferConfig{
			Type:        string(bpf.TransportAuto),
			Size:        bpf.DefaultBufferSize,
			DrainPeriod: bpf.DefaultDrainPeriod,
		},
		Args:           ArgsConfig{MaxBytes: bpf.DefaultArgsSize, MaxCount: bpf.DefaultMaxArgs},
		FailedExecs:    string(bpf.FailedExecsInclude),
		FailedExecHook: string(bpf.HookAuto),
		Exits:          true,
		Executable: ExecutableConfig{Hash: HashConfig{Enabled: true, MaxSize: exehash.DefaultMaxSize,
			CacheEntries: exehash.DefaultCacheEntries}},
		ExecContext: slices.Clone(procattr.GroupNames),
		Lineage: LineageConfig{MaxAncestors: proctable.DefaultMaxAncestors,
			ParentArgsBytes: proctable.DefaultArgsBytes, MaxProcesses: proctable.DefaultMaxProcesses},
		Filters:   FiltersConfig{ExcludeSelf: true},
		Redaction: RedactionConfig{Enabled: true},
		Batch:     BatchConfig{MaxSize: defaultBatchSize, FlushInterval: defaultFlushInterval},
		Traces: TracesConfig{Roots: []string{"*"}, MaxOpenSpans: defaultMaxOpenSpans,
			ContextFromEnv: true, EnvScanBytes: bpf.DefaultEnvScanSize},
	}
}

var _ confmap.Validator = (*Config)(nil)

// Validate names every field out of range.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	switch bpf.Transport(c.Buffer.Type) {
	case bpf.TransportAuto, bpf.TransportRingbuf, bpf.TransportPerf:
	default:
		bad("buffer.type", "%q is not auto, ringbuf or perf", c.Buffer.Type)
	}
	if c.Buffer.Size < bpf.MinBufferSize || c.Buffer.Size > bpf.MaxBufferSize {
		bad("buffer.size", "%d is not between %d and %d bytes", c.Buffer.Size, bpf.MinBufferSize, bpf.MaxBufferSize)
	}
	if c.Buffer.DrainPeriod <= 0 || c.Buffer.DrainPeriod > bpf.MaxDrainPeriod {
		bad("buffer.drain_period", "%s is not between 0 and %s", c.Buffer.DrainPeriod, bpf.MaxDrainPeriod)
	}
	if c.Args.MaxBytes < 1 || c.Args.MaxBytes > bpf.MaxArgsSize {
		bad("args.max_bytes", "%d is not between 1 and %d", c.Args.MaxBytes, bpf.MaxArgsSize)
	}
	if c.Args.MaxCount < 1 {
		bad("args.max_count", "%d must be at least 1", c.Args.MaxCount)
	}
	switch bpf.FailedExecs(c.FailedExecs) {
	case bpf.FailedExecsInclude, bpf.FailedExecsExclude, bpf.FailedExecsOnly:
	default:
		bad("failed_execs", "%q is not include, exclude or only", c.FailedExecs)
	}
	switch bpf.FailedExecHook(c.FailedExecHook) {
	case bpf.HookAuto, bpf.HookFexit, bpf.HookSysExit:
	default:
		bad("failed_exec_hook", "%q is not auto, fexit or sys_exit", c.FailedExecHook)
	}
	if h := c.Executable.Hash; h.MaxSize < 1 || h.MaxSize > maxHashSize {
		bad("executable.hash.max_size", "%d is not between 1 and %d bytes", h.MaxSize, maxHashSize)
	}
	if h := c.Executable.Hash; h.MaxWait < 0 || h.MaxWait > maxHashWait {
		bad("executable.hash.max_wait", "%s is not between 0 (batch.flush_interval) and %s", h.MaxWait, maxHashWait)
	}
	if h := c.Executable.Hash; h.CacheEntries < 1 || h.CacheEntries > exehash.MaxCacheEntries {
		bad("executable.hash.cache_entries", "%d is not between 1 and %d", h.CacheEntries, exehash.MaxCacheEntries)
	}
	for _, g := range c.ExecContext {
		if !slices.Contains(procattr.GroupNames, g) {
			bad("exec_context", "%q is not %s", g, strings.Join(procattr.GroupNames, ", "))
		}
	}
	if c.Lineage.MaxAncestors < 0 || c.Lineage.MaxAncestors > proctable.MaxMaxAncestors {
		bad("lineage.max_ancestors", "%d is not between 0 and %d", c.Lineage.MaxAncestors, proctable.MaxMaxAncestors)
	}
	if c.Lineage.ParentArgsBytes < 0 || c.Lineage.ParentArgsBytes > proctable.MaxArgsBytes {
		bad("lineage.parent_args_bytes", "%d is not between 0 and %d", c.Lineage.ParentArgsBytes, proctable.MaxArgsBytes)
	}
	if c.Lineage.MaxProcesses < proctable.MinMaxProcesses || c.Lineage.MaxProcesses > proctable.MaxMaxProcesses {
		bad("lineage.max_processes", "%d is not between %d and %d", c.Lineage.MaxProcesses, proctable.MinMaxProcesses, proctable.MaxMaxProcesses)
	}
	if c.Filters.Cgroup != "" && !filepath.IsAbs(c.Filters.Cgroup) {
		bad("filters.cgroup", "%q must be an absolute path to a cgroup v2 directory", c.Filters.Cgroup)
	}
	for field, patterns := range map[string][]string{
		"filters.include_comms": c.Filters.IncludeComms,
		"filters.exclude_comms": c.Filters.ExcludeComms,
	} {
		for _, p := range patterns {
			if _, err := filepath.Match(p, ""); err != nil {
				bad(field, "bad pattern %q: %v", p, err)
			}
		}
	}
	if _, err := c.Redaction.redactor(); err != nil {
		bad("redaction.patterns", "%v", err)
	}
	if c.Batch.MaxSize < 1 {
		bad("batch.max_size", "%d must be at least 1", c.Batch.MaxSize)
	}
	if c.Batch.FlushInterval <= 0 || c.Batch.FlushInterval > maxFlushInterval {
		bad("batch.flush_interval", "%s is not between 0 and %s", c.Batch.FlushInterval, maxFlushInterval)
	}
	if len(c.Traces.Roots) == 0 {
		bad("traces.roots", "give at least one pattern (\"*\" for every process)")
	}
	if c.Traces.MaxOpenSpans < 1 {
		bad("traces.max_open_spans", "%d must be at least 1", c.Traces.MaxOpenSpans)
	}
	if c.Traces.EnvScanBytes < 1 || c.Traces.EnvScanBytes > bpf.MaxEnvScanSize {
		bad("traces.env_scan_bytes", "%d is not between 1 and %d", c.Traces.EnvScanBytes, bpf.MaxEnvScanSize)
	}
	return errors.Join(errs...)
}

// groups are the exec_context groups (Validate has checked the names).
func (c *Config) groups() procattr.Group {
	g, _ := procattr.ParseGroups(c.ExecContext)
	return g
}

// lineage reports whether exec records carry the lineage group, which
// needs the process table and so fork and exit events.
func (c *Config) lineage() bool { return c.groups()&procattr.GroupLineage != 0 }

// probeOptions is the part of the configuration the kernel side applies.
func (c *Config) probeOptions(spans bool) bpf.Options {
	lineage := c.lineage()
	return bpf.Options{
		Transport:      bpf.Transport(c.Buffer.Type),
		BufferSize:     c.Buffer.Size,
		ArgsSize:       c.Args.MaxBytes,
		MaxArgs:        c.Args.MaxCount,
		FailedExecs:    bpf.FailedExecs(c.FailedExecs),
		FailedExecHook: bpf.FailedExecHook(c.FailedExecHook),
		// A span ends at the exit and starts at the fork; the process
		// table forgets a process at its exit and learns a child at
		// its fork. Exit records are still only sent with Exits.
		Exits:       c.Exits || spans || lineage,
		Forks:       spans || lineage,
		UIDs:        c.Filters.UIDs,
		CgroupPath:  c.Filters.Cgroup,
		DrainPeriod: c.Buffer.DrainPeriod,
		// Only spans use the trace context: a logs-only receiver does
		// not look for it.
		TraceContext: spans && c.Traces.ContextFromEnv,
		EnvScanSize:  c.Traces.EnvScanBytes,
		ExcludeSelf:  c.Filters.ExcludeSelf,
	}
}

// keepComm applies the comm patterns, which the kernel cannot.
func (f *FiltersConfig) keepComm(comm string) bool {
	matches := func(patterns []string) bool {
		for _, p := range patterns {
			if ok, _ := filepath.Match(p, comm); ok {
				return true
			}
		}
		return false
	}
	return (len(f.IncludeComms) == 0 || matches(f.IncludeComms)) && !matches(f.ExcludeComms)
}

// redactor is nil when redaction is off.
func (c *RedactionConfig) redactor() (*redact.Redactor, error) {
	if !c.Enabled {
		return nil, nil
	}
	return redact.New(c.Patterns)
}
