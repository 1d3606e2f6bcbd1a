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
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/cgroup"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/overlay"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/proctable"
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

	mapper := &procattr.Mapper{ExecutableFile: cfg.executableFile, Layers: overlay.New("/proc"),
		Omit: procattr.GroupsAll &^ cfg.groups}
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
	if cfg.lineage() {
		// After the probe is attached: a process that forks, execs or
		// exits while /proc is read is corrected by its event.
		mapper.Table = proctable.New(proctable.Config{MaxAncestors: cfg.maxAncestors,
			ArgsBytes: proctable.DefaultArgsBytes, Redactor: mapper.Redactor})
		if _, err := mapper.Table.LoadProc("/proc"); err != nil {
			fmt.Fprintf(stderr, "execsnoop: reading the running processes (%s): the parents of their execs are unknown\n", oneLine(err))
		}
	}
	if _, err := procattr.BootID(); err != nil && (cfg.json || cfg.otlp) {
		fmt.Fprintf(stderr, "execsnoop: the host's boot id is unreadable (%s): execsnoop.exec.id is unique on this host only within this boot\n", oneLine(err))
	}

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

	l := loop{cfg: cfg, probe: probe, out: out, printer: printer, otlp: exporter, stderr: stderr, table: mapper.Table}
	if (cfg.json && !cfg.quiet || cfg.otlp) && !cfg.noHash {
		if l.ids, err = newIdentities(cfg); err != nil {
			probe.Close()
			fmt.Fprintf(stderr, "execsnoop: %s\n", oneLine(err))
			return 1
		}
		defer l.ids.hasher.Close()
		if ok, err := exehash.CanReadOthers(); !ok {
			why := ""
			if err != nil {
				why = " (" + oneLine(err) + ")"
			}
			fmt.Fprintf(stderr, "execsnoop: no CAP_SYS_PTRACE%s: executables of other users' processes are read through their paths where this user may, else marked execsnoop.executable.hash.missing=unreadable\n", why)
		}
	}
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
	if l.table != nil {
		records += fmt.Sprintf("; process table: %d processes dropped when full", l.tableDropped+l.table.Dropped())
	}
	fmt.Fprintln(stderr, summary+records)
	if l.ids != nil {
		fmt.Fprintln(stderr, l.ids.summary())
	}
	return status
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
