//go:build linux && (amd64 || arm64)

package bpf

import (
	"fmt"
	"io"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ProgramStats is what the kernel measured of one BPF program while
// statistics were on (EnableProgramStats): runs and their total time.
type ProgramStats struct {
	Runs    uint64
	RunTime uint64 // nanoseconds
}

// EnableProgramStats turns on the kernel's run-time statistics of BPF
// programs (as kernel.bpf_stats_enabled does) until the closer is closed.
// They cost every BPF program on the host two clock reads per run.
func EnableProgramStats() (io.Closer, error) {
	return ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
}

// ProgramStats returns the statistics of the exec, exit and fork programs,
// by name (handle_exec, handle_exit, handle_fork).
func (p *Probe) ProgramStats() (map[string]ProgramStats, error) {
	out := map[string]ProgramStats{}
	for name, prog := range map[string]*ebpf.Program{"handle_exec": p.objs.HandleExec, "handle_exit": p.objs.HandleExit, "handle_fork": p.objs.HandleFork} {
		st, err := prog.Stats()
		if err != nil {
			return nil, fmt.Errorf("statistics of %s: %w", name, err)
		}
		out[name] = ProgramStats{Runs: st.RunCount, RunTime: uint64(st.Runtime.Nanoseconds())}
	}
	return out, nil
}
