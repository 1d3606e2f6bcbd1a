package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/grpc"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

// scopeName is the instrumentation scope of the CLI's log records.
const scopeName = "github.com/otelexecsnoop/execsnoop/cmd/execsnoop"

// errorWarnEvery rate-limits the printing of export errors.
const errorWarnEvery = 5 * time.Second

// otlpOutput exports events as log records. The SDK's resource belongs to
// the LoggerProvider, and container.id and k8s.pod.uid are resource
// attributes (as in the receiver), so there is one provider per container,
// created on first use; the zero Container is the host's. Every provider
// has its own BatchProcessor, and all of them share one exporter
// (otlploggrpc's is safe for concurrent Export).
type otlpOutput struct {
	mapper   *procattr.Mapper
	exporter *sharedExporter
	base     *resource.Resource // service.name, host.name, the environment's
	version  string
	stderr   io.Writer

	providers map[procattr.Container]*otlpProvider // the loop's goroutine only
	attrs     kvSink                               // reused for every record

	acct    *accounting
	handler *errorHandler
}

type otlpProvider struct {
	provider *sdklog.LoggerProvider
	logger   log.Logger
	exporter *countingExporter
}

func newOTLPOutput(ctx context.Context, cfg *config, mapper *procattr.Mapper, stderr io.Writer) (*otlpOutput, error) {
	var opts []otlploggrpc.Option
	switch ep := cfg.otlpEndpoint; {
	case strings.Contains(ep, "://"):
		opts = append(opts, otlploggrpc.WithEndpointURL(ep))
	case ep != "":
		opts = append(opts, otlploggrpc.WithEndpoint(ep))
	}
	if cfg.otlpInsecure {
		opts = append(opts, otlploggrpc.WithInsecure())
	}
	// The interceptor reads how many records a partial success rejected.
	opts = append(opts, otlploggrpc.WithDialOption(grpc.WithChainUnaryInterceptor(interceptExport)))
	exp, err := otlploggrpc.New(ctx, opts...)
	if err != nil {
		return nil, err
	}

	attrs := []attribute.KeyValue{attribute.String(procattr.ServiceName, "execsnoop")}
	if host, err := os.Hostname(); err == nil {
		attrs = append(attrs, attribute.String(procattr.HostName, host))
	}
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the defaults.
	env, err := resource.New(ctx, resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("resource from the environment: %w", err)
	}
	base, err := resource.Merge(resource.NewSchemaless(attrs...), env)
	if err != nil {
		return nil, err
	}

	o := &otlpOutput{
		mapper:    mapper,
		exporter:  &sharedExporter{Exporter: exp},
		base:      base,
		stderr:    stderr,
		providers: make(map[procattr.Container]*otlpProvider),
		attrs:     make(kvSink, 0, procattr.MaxAttributes+procattr.IdentityAttributes),
		acct:      newAccounting(stderr),
		handler:   &errorHandler{w: stderr},
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "(devel)" {
		o.version = bi.Main.Version
	}
	otel.SetErrorHandler(o.handler)
	return o, nil
}

// provider returns the provider of a container, creating it.
func (o *otlpOutput) provider(container procattr.Container) *otlpProvider {
	if p, ok := o.providers[container]; ok {
		return p
	}
	res := o.base
	var attrs kvSink
	container.Resource(&attrs)
	if len(attrs) > 0 {
		if merged, err := resource.Merge(o.base, resource.NewSchemaless(attrs...)); err == nil {
			res = merged
		}
	}
	exp := &countingExporter{Exporter: o.exporter, acct: o.acct}
	lp := sdklog.NewLoggerProvider(
		sdklog.WithResource(res),
		sdklog.WithProcessor(sdklog.NewBatchProcessor(exp, sdklog.WithMaxQueueSize(o.acct.queueSize))),
	)
	var loggerOpts []log.LoggerOption
	if o.version != "" {
		loggerOpts = append(loggerOpts, log.WithInstrumentationVersion(o.version))
	}
	p := &otlpProvider{provider: lp, logger: lp.Logger(scopeName, loggerOpts...), exporter: exp}
	o.providers[container] = p
	return p
}

// emit puts procattr's record of the event into a log record, as the
// receiver's toLogRecord does.
func (o *otlpOutput) emit(ev *bpf.Event, observed time.Time, id *exehash.Identity) {
	l := o.mapper.Log(ev)
	p := o.provider(l.Resource)
	if !o.acct.admit(p.exporter) {
		return
	}
	var rec log.Record
	rec.SetEventName(l.EventName)
	rec.SetTimestamp(l.Time)
	rec.SetObservedTimestamp(observed)
	rec.SetSeverity(log.Severity(l.Severity.Number))
	rec.SetSeverityText(l.Severity.Text)
	rec.SetBody(attribute.StringValue(l.Body))
	o.attrs = o.attrs[:0]
	o.mapper.Attributes(ev, &o.attrs)
	if id != nil {
		procattr.Identity(id, &o.attrs)
	}
	rec.AddAttributes(o.attrs...)
	p.logger.Emit(context.Background(), rec)
}

// shutdown flushes and stops every provider, then the shared exporter,
// giving up after shutdownTimeout (it then returns true); errors are
// printed. The SDK's batch processor does not heed the deadline while an
// export is in flight (the exporter's own timeout bounds that), so the
// wait is bounded here too.
func (o *otlpOutput) shutdown(stderr io.Writer) (gaveUp bool) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		for _, p := range o.providers {
			wg.Go(func() {
				err := p.provider.Shutdown(ctx)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			})
		}
		wg.Wait()
		errs = append(errs, o.exporter.Exporter.Shutdown(ctx))
		done <- errors.Join(errs...)
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(shutdownTimeout + 500*time.Millisecond):
		err = context.DeadlineExceeded
	}
	o.handler.flush()
	switch {
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "execsnoop: gave up flushing the OTLP export after %s\n", shutdownTimeout)
		return true
	case err != nil:
		fmt.Fprintf(stderr, "execsnoop: flushing the OTLP export: %s\n", oneLine(err))
	}
	return false
}

// sharedExporter is the one exporter under every provider's batch
// processor (each through its countingExporter). Its Shutdown does
// nothing, as each provider's shutdown would otherwise stop the exporter
// the other providers still flush through; otlpOutput.shutdown stops the
// real exporter once, after all providers.
type sharedExporter struct {
	sdklog.Exporter
}

func (*sharedExporter) Shutdown(context.Context) error { return nil }

// errorHandler receives the SDK's errors (failed background exports): it
// counts them and prints them at most once per errorWarnEvery.
type errorHandler struct {
	w io.Writer

	mu         sync.Mutex
	count      uint64
	suppressed uint64
	last       time.Time
}

func (h *errorHandler) Handle(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.count++
	if !h.last.IsZero() && time.Since(h.last) < errorWarnEvery {
		h.suppressed++
		return
	}
	more := ""
	if h.suppressed > 0 {
		more = fmt.Sprintf(" (and %d more errors)", h.suppressed)
	}
	fmt.Fprintf(h.w, "execsnoop: OTLP export: %s%s\n", oneLine(err), more)
	h.last = time.Now()
	h.suppressed = 0
}

// flush prints how many errors the rate limit held back.
func (h *errorHandler) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.suppressed > 0 {
		fmt.Fprintf(h.w, "execsnoop: OTLP export: %d more errors\n", h.suppressed)
		h.suppressed = 0
	}
}

// kvSink collects procattr attributes as OpenTelemetry attributes; procattr
// already made every string valid UTF-8, as protobuf requires.
type kvSink []attribute.KeyValue

func (s *kvSink) Str(k, v string)            { *s = append(*s, attribute.String(k, v)) }
func (s *kvSink) Int(k string, v int64)      { *s = append(*s, attribute.Int64(k, v)) }
func (s *kvSink) Double(k string, v float64) { *s = append(*s, attribute.Float64(k, v)) }
func (s *kvSink) Bool(k string, v bool)      { *s = append(*s, attribute.Bool(k, v)) }

// Strs relies on attribute.StringSlice copying vs, which the next Read reuses.
func (s *kvSink) Strs(k string, vs []string) { *s = append(*s, attribute.StringSlice(k, vs)) }
func (s *kvSink) Ints(k string, vs []int64)  { *s = append(*s, attribute.Int64Slice(k, vs)) }
