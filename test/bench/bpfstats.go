//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
)

// The BPF programs of a tracer process and the kernel's run-time
// statistics of each (main keeps them enabled for the whole run). A
// process's programs are found through its file descriptors: the fdinfo
// of a program's fd, and of a link's, names the program's id.

type progStat struct {
	name string // the function's full name, from BTF (the kernel keeps 15 bytes)
	runs uint64
	ns   uint64
}

func tracerPrograms(pid int) map[ebpf.ProgramID]progStat {
	ids := map[ebpf.ProgramID]bool{}
	infos, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", pid))
	for _, path := range infos {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("prog_id:")); ok {
				id, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 32)
				if err == nil {
					ids[ebpf.ProgramID(id)] = true
				}
			}
		}
	}
	out := map[ebpf.ProgramID]progStat{}
	for id := range ids {
		prog, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded since
		}
		info, ierr := prog.Info()
		st, serr := prog.Stats()
		_ = prog.Close()
		if ierr != nil || serr != nil {
			continue
		}
		out[id] = progStat{name: info.Name, runs: st.RunCount, ns: uint64(st.Runtime.Nanoseconds())}
	}
	return out
}

// progRuns is what each program (by name) did between two readings.
type progRuns map[string]progStat

func programsSince(after, before map[ebpf.ProgramID]progStat) progRuns {
	out := progRuns{}
	for id, a := range after {
		b := before[id]
		d := out[a.name]
		d.name, d.runs, d.ns = a.name, d.runs+a.runs-b.runs, d.ns+a.ns-b.ns
		out[a.name] = d
	}
	return out
}

// Which programs run once per exec, fork and exit: ours by their function
// names; libbpf-tools execsnoop's two, at the execve syscall's entry and
// exit, both count as its exec path.
var programClasses = map[string][]string{
	"exec": {"handle_exec", "tracepoint__syscalls__sys_enter_execve", "tracepoint__syscalls__sys_exit_execve"},
	"fork": {"handle_fork"},
	"exit": {"handle_exit"},
}

// perRun is the class's run time per run, summed over its programs; 0 when
// the tracer has none of them or they did not run.
func (p progRuns) perRun(class string) float64 {
	var ns float64
	for _, name := range programClasses[class] {
		if d := p[name]; d.runs > 0 {
			ns += float64(d.ns) / float64(d.runs)
		}
	}
	return ns
}

// String lists every program with its runs and time per run, for the log.
func (p progRuns) String() string {
	var names []string
	for name := range p {
		names = append(names, name)
	}
	sort.Strings(names)
	var parts []string
	for _, name := range names {
		d := p[name]
		per := 0.0
		if d.runs > 0 {
			per = float64(d.ns) / float64(d.runs)
		}
		parts = append(parts, fmt.Sprintf("%s %d runs %.0f ns/run", name, d.runs, per))
	}
	return strings.Join(parts, ", ")
}
