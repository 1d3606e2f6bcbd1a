package procattr

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
	"github.com/otelexecsnoop/execsnoop/internal/redact"
)

// registered is one attribute of the registry snapshot.
type registered struct {
	typ        string
	deprecated bool
}

// loadRegistry reads testdata/semconv-registry-<RegistryVersion>.txt.
func loadRegistry(t *testing.T) map[string]registered {
	t.Helper()
	name := "testdata/semconv-registry-" + RegistryVersion + ".txt"
	src, err := os.ReadFile("semconv.go")
	if err != nil {
		t.Fatal(err)
	}
	if gen := "-tag " + RegistryVersion + " -o " + name + "\n"; !strings.Contains(string(src), gen) {
		t.Fatalf("semconv.go's go:generate line does not write %q for %s", name, RegistryVersion)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatalf("%v: generate it with go generate ./internal/procattr/ (see semconv.go)", err)
	}
	defer f.Close()
	reg := map[string]registered{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if line == 1 && !strings.HasPrefix(text, "# semantic-conventions "+RegistryVersion+" (commit ") {
			t.Fatalf("%s does not name %s in its header: %q", name, RegistryVersion, text)
		}
		if strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 3 || (fields[2] != "true" && fields[2] != "false") {
			t.Fatalf("%s:%d: not \"id type deprecated\": %q", name, line, text)
		}
		reg[fields[0]] = registered{typ: fields[1], deprecated: fields[2] == "true"}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(reg) < 500 {
		t.Fatalf("%s holds %d attributes: not a whole registry", name, len(reg))
	}
	return reg
}

// registryType is the registry's name for a MapSink value's type.
func registryType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "int"
	case float64:
		return "double"
	case bool:
		return "boolean"
	case []string:
		return "string[]"
	case []int64:
		return "int[]"
	}
	return fmt.Sprintf("%T", v)
}

// emittedKeys is every key the mapping can emit, with a value of its type,
// by where it goes: events with every optional attribute set, of each kind,
// the span-only keys, and the resources of the receiver and the CLI.
func emittedKeys(t *testing.T) map[string]MapSink {
	m, cg := podMapper(t)
	r, err := redact.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Redactor = r
	m.ExecutableFile = true
	m.Table = lineageTable()
	exec := &bpf.Event{Kind: bpf.KindExec, PID: 10, TID: 11, PPID: 1, UID: 1000, GID: 100, Comm: "tool",
		Filename: "/usr/bin/tool", Args: []string{"tool", "--password=hunter2", "\xff"}, Argc: 3,
		Syscall: bpf.SyscallExecveat, LoginUID: 1000, ArgsTruncated: true, ArgsUnreadable: true,
		FilenameTruncated: true, Time: start, CgroupID: cg, RealUID: 1000, SavedUID: 0, RealGID: 100,
		SavedGID: 0, CapEffective: 1 << 7, Privileges: bpf.PrivSetuid | bpf.PrivSetgid | bpf.PrivFileCaps,
		SessionID: 5, PGID: 6, VPID: 1, AuditSessionID: 4, TTYIndex: 3, TTYName: "pts3",
		Cwd: "/srv", CwdCut: true, Executable: maxExecutable}
	failed := *exec
	failed.Retval = -2
	failed.Executable = bpf.Executable{}
	script := *exec // a relative script in an uncut working directory
	script.Filename, script.CwdCut = "./tool", false
	exit := &bpf.Event{Kind: bpf.KindExit, PID: 10, TID: 10, PPID: 1, Comm: "tool", ExitCode: 3 << 8,
		StartTime: start, Time: start.Add(time.Second), CgroupID: cg, Rusage: bpf.Rusage{Valid: true,
			UserCPU: time.Second, SystemCPU: time.Second, MaxRSS: 1 << 20, MinorFaults: 1, MajorFaults: 1,
			VoluntaryCtxSwitches: 1, InvoluntaryCtxSwitches: 1, IOAccounted: true, ReadBytes: 1, WriteBytes: 1,
			ThreadsCut: true}}
	killed := *exit
	killed.ExitCode = 9 | 0x80
	fork := &bpf.Event{Kind: bpf.KindFork, PID: 12, PPID: 10, Comm: "tool", StartTime: start, CgroupID: cg}

	out := map[string]MapSink{}
	for name, ev := range map[string]*bpf.Event{"exec": exec, "script exec": &script, "failed exec": &failed, "exit": exit,
		"killed exit": &killed, "fork": fork} {
		s := MapSink{}
		m.Attributes(ev, s)
		out[name+" record"] = s
	}
	hashed, missing := MapSink{}, MapSink{}
	Identity(&exehash.Identity{SHA256: "ab", GNU: "cd", Go: "ef/gh", HTLHash: "01"}, hashed)
	Identity(&exehash.Identity{Missing: exehash.TooLarge}, missing)
	out["hashed exec record"], out["unhashed exec record"] = hashed, missing
	span := MapSink{}
	SpanStart(10, span)
	m.Attributes(exec, span)
	m.Attributes(&failed, span)
	m.SpanExit(exit, span)
	m.SpanExit(&killed, span)
	MarkUnfinished(span)
	MarkAdopted(span)
	out["span"] = span

	res := MapSink{}
	m.Container(exec).Resource(res)
	if len(res) != 2 {
		t.Fatalf("the pod's container has resource %v, want container.id and k8s.pod.uid", res)
	}
	res[ServiceName], res[HostName] = "execsnoop", "host" // the CLI's own
	out["resource"] = res
	return out
}

// Every attribute in a namespace the semantic conventions own is a
// registered, non-deprecated attribute of the registered type; every other
// carries the project's prefix.
func TestNamesFollowTheRegistry(t *testing.T) {
	reg := loadRegistry(t)
	owned := map[string]bool{} // the registry's namespaces: first segments of its ids
	var templates []string
	for id, a := range reg {
		owned[strings.SplitN(id, ".", 2)[0]] = true
		if strings.HasPrefix(a.typ, "template[") {
			templates = append(templates, id)
		}
	}
	const prefix = "execsnoop."
	if owned[strings.TrimSuffix(prefix, ".")] {
		t.Fatalf("the registry has a namespace %q: the project's prefix must change", prefix)
	}
	emitted := emittedKeys(t)
	checked := 0
	for _, where := range slices.Sorted(maps.Keys(emitted)) {
		attrs := emitted[where]
		for _, key := range slices.Sorted(maps.Keys(attrs)) {
			checked++
			typ := registryType(attrs[key])
			if strings.HasPrefix(key, prefix) {
				continue
			}
			if !owned[strings.SplitN(key, ".", 2)[0]] {
				t.Errorf("%s: %s is in no namespace of the semantic conventions %s: name it %s%s", where, key, RegistryVersion, prefix, key)
				continue
			}
			a, ok := reg[key]
			if !ok {
				for _, tmpl := range templates {
					if strings.HasPrefix(key, tmpl+".") {
						a, ok = registered{typ: strings.TrimSuffix(strings.TrimPrefix(reg[tmpl].typ, "template["), "]"), deprecated: reg[tmpl].deprecated}, true
					}
				}
			}
			switch {
			case !ok:
				t.Errorf("%s: %s is in a namespace of the semantic conventions but not registered in %s: use a registered attribute or name it %s%s", where, key, RegistryVersion, prefix, key)
			case a.deprecated:
				t.Errorf("%s: %s is deprecated in the semantic conventions %s: use what replaces it", where, key, RegistryVersion)
			case a.typ != typ:
				t.Errorf("%s: %s is a %s, the semantic conventions %s register a %s", where, key, typ, RegistryVersion, a.typ)
			}
		}
	}
	// Every attribute name the package declares is among those checked, so
	// that a new one cannot slip past the events above.
	for name, key := range declaredKeys(t) {
		if !slices.ContainsFunc(slices.Collect(maps.Values(emitted)), func(s MapSink) bool { _, ok := s[key]; return ok }) {
			t.Errorf("%s (%s) is declared but emittedKeys never emits it: add the case that does", name, key)
		}
	}
	if checked < 40 {
		t.Errorf("only %d keys checked: the events above no longer exercise the mapping", checked)
	}
}

// notAttributes are the package's dotted string constants that name no
// attribute.
var notAttributes = []string{"EventExec", "EventExit", "EventFork", "RegistryVersion"}

// declaredKeys returns the package's string constants that look like
// attribute names ("a.b"), by constant name.
func declaredKeys(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) || slices.Contains(notAttributes, name.Name) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					if v, err := strconv.Unquote(lit.Value); err == nil && strings.Contains(v, ".") {
						keys[name.Name] = v
					}
				}
			}
		}
	}
	if len(keys) < 30 {
		t.Fatalf("found %d attribute constants: the parse is broken", len(keys))
	}
	return keys
}
