// Command timeline draws the process spans of one trace as an SVG
// timeline: one row per process, indented below its parent, a bar from its
// fork to its exit (red when it failed), and what it used (CPU time, peak
// RSS). It reads OTLP JSON lines as the collector's file exporter writes
// them. The README's "Tracing CI jobs" picture is made with it.
//
//	go run ./tools/timeline -in spans.json -trace TRACEID -out timeline.svg
package main

import (
	"bufio"
	"encoding/hex"
	"flag"
	"fmt"
	"html"
	"os"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

func main() {
	in := flag.String("in", "", "OTLP JSON lines with spans (the file exporter's output)")
	trace := flag.String("trace", "", "the trace id to draw (hex); default: the trace with the most spans")
	out := flag.String("out", "timeline.svg", "the SVG to write")
	title := flag.String("title", "", "a title above the timeline")
	flag.Parse()
	if *in == "" {
		fmt.Fprintln(os.Stderr, "timeline: give -in FILE (OTLP JSON lines)")
		os.Exit(2)
	}
	spans, err := readSpans(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "timeline:", err)
		os.Exit(1)
	}
	if *trace == "" {
		*trace = biggestTrace(spans)
	}
	var mine []ptrace.Span
	for _, s := range spans {
		if traceHex(s) == *trace {
			mine = append(mine, s)
		}
	}
	if len(mine) == 0 {
		fmt.Fprintf(os.Stderr, "timeline: no spans of trace %q in %s\n", *trace, *in)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, []byte(render(mine, *trace, *title)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "timeline:", err)
		os.Exit(1)
	}
}

func traceHex(s ptrace.Span) string { id := s.TraceID(); return hex.EncodeToString(id[:]) }
func spanHex(id [8]byte) string     { return hex.EncodeToString(id[:]) }

func readSpans(path string) ([]ptrace.Span, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var spans []ptrace.Span
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	var u ptrace.JSONUnmarshaler
	for sc.Scan() {
		td, err := u.UnmarshalTraces(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					spans = append(spans, s)
				}
			}
		}
	}
	return spans, sc.Err()
}

func biggestTrace(spans []ptrace.Span) string {
	count := map[string]int{}
	best := ""
	for _, s := range spans {
		t := traceHex(s)
		count[t]++
		if count[t] > count[best] {
			best = t
		}
	}
	return best
}

type row struct {
	span  ptrace.Span
	depth int
}

// order puts every span after its parent, siblings by start time; spans
// whose parent is not in the trace (the remote CI span) come first.
func order(spans []ptrace.Span) []row {
	byID := map[[8]byte]bool{}
	children := map[[8]byte][]ptrace.Span{}
	var tops []ptrace.Span
	for _, s := range spans {
		byID[s.SpanID()] = true
	}
	for _, s := range spans {
		if p := s.ParentSpanID(); !p.IsEmpty() && byID[p] {
			children[p] = append(children[p], s)
		} else {
			tops = append(tops, s)
		}
	}
	byStart := func(a, b ptrace.Span) int { return int(a.StartTimestamp()) - int(b.StartTimestamp()) }
	var rows []row
	var walk func(s ptrace.Span, depth int)
	walk = func(s ptrace.Span, depth int) {
		rows = append(rows, row{s, depth})
		kids := children[s.SpanID()]
		slices.SortFunc(kids, byStart)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	slices.SortFunc(tops, byStart)
	for _, s := range tops {
		walk(s, 1)
	}
	return rows
}

func attrDouble(s ptrace.Span, key string) float64 {
	v, ok := s.Attributes().Get(key)
	if !ok {
		return 0
	}
	return v.Double()
}

func attrInt(s ptrace.Span, key string) int64 {
	v, ok := s.Attributes().Get(key)
	if !ok {
		return 0
	}
	return v.Int()
}

func label(s ptrace.Span) string {
	name := s.Name()
	if args, ok := s.Attributes().Get("process.command_args"); ok && args.Slice().Len() > 0 {
		var parts []string
		for i, a := range args.Slice().AsRaw() {
			if i == 0 {
				continue
			}
			parts = append(parts, fmt.Sprint(a))
		}
		if len(parts) > 0 {
			name += " " + strings.Join(parts, " ")
		}
	}
	if len(name) > 38 {
		name = name[:37] + "…"
	}
	return name
}

const (
	rowHeight = 22
	labelW    = 300
	barW      = 560
	infoW     = 330
	top       = 64
)

func render(spans []ptrace.Span, trace, title string) string {
	rows := order(spans)
	start, end := rows[0].span.StartTimestamp(), rows[0].span.EndTimestamp()
	for _, r := range rows {
		start = min(start, r.span.StartTimestamp())
		end = max(end, r.span.EndTimestamp())
	}
	total := time.Duration(end - start)
	x := func(t uint64) float64 { return labelW + float64(barW)*float64(t-uint64(start))/float64(total) }
	height := top + (len(rows)+1)*rowHeight + 30
	width := labelW + barW + infoW
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="DejaVu Sans Mono, Menlo, monospace" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	if title != "" {
		fmt.Fprintf(&b, `<text x="10" y="20" font-size="15" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	}
	remote := ""
	if p := rows[0].span.ParentSpanID(); !p.IsEmpty() {
		remote = " · parent (from TRACEPARENT) " + spanHex(p)
	}
	fmt.Fprintf(&b, `<text x="10" y="40" fill="#555">trace %s%s · %d processes · %.2fs</text>`+"\n", trace, remote, len(rows), total.Seconds())
	// A time axis.
	for i := 0; i <= 4; i++ {
		xx := labelW + float64(barW)*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e4e4e4"/>`+"\n", xx, top-8, xx, height-30)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#777" text-anchor="middle">%.2fs</text>`+"\n", xx, top-12, total.Seconds()*float64(i)/4)
	}
	// The remote parent: the CI step that handed its TRACEPARENT down.
	if remote != "" {
		y := top
		fmt.Fprintf(&b, `<text x="10" y="%d" fill="#555" font-style="italic">CI step (remote parent)</text>`+"\n", y+15)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="14" fill="#d8d8d8" rx="2"/>`+"\n", labelW, y+4, barW)
	}
	for i, r := range rows {
		y := top + (i+1)*rowHeight
		s := r.span
		color := "#4c78a8"
		if s.Status().Code() == ptrace.StatusCodeError {
			color = "#d6453d"
		}
		x0, x1 := x(uint64(s.StartTimestamp())), x(uint64(s.EndTimestamp()))
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", 10+r.depth*12, y+15, html.EscapeString(label(s)))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="14" fill="%s" rx="2"/>`+"\n", x0, y+4, max(x1-x0, 1.5), color)
		cpu := attrDouble(s, "execsnoop.process.cpu.time.user") + attrDouble(s, "execsnoop.process.cpu.time.system")
		rss := float64(attrInt(s, "execsnoop.process.memory.peak")) / (1 << 20)
		dur := time.Duration(s.EndTimestamp() - s.StartTimestamp())
		info := fmt.Sprintf("%7.3fs  cpu %.3fs  rss %.0f MiB", dur.Seconds(), cpu, rss)
		if code := attrInt(s, "process.exit.code"); code != 0 {
			info += fmt.Sprintf("  exit %d", code)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#333">%s</text>`+"\n", labelW+barW+10, y+15, html.EscapeString(info))
	}
	b.WriteString("</svg>\n")
	return b.String()
}
