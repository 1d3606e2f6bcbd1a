package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// selfTGID returns this process's id as the probe's programs see it: the
// tgid in the initial PID namespace. Inside a container's own PID
// namespace os.Getpid() is not that (the collector is often pid 1 there,
// and excluding pid 1's tree would drop every event on the host). A raw
// tracepoint program of three instructions, run once in this task with
// BPF_PROG_TEST_RUN (Linux 5.10+), returns it.
func selfTGID() (uint32, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    "self_tgid",
		Type:    ebpf.RawTracepoint,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.FnGetCurrentPidTgid.Call(),
			asm.RSh.Imm(asm.R0, 32), // the tgid is the upper half
			asm.Return(),
		},
	})
	if err != nil {
		return 0, fmt.Errorf("loading the program that finds this process's host pid: %w", err)
	}
	defer prog.Close()
	tgid, err := prog.Run(&ebpf.RunOptions{})
	if err != nil {
		return 0, fmt.Errorf("running the program that finds this process's host pid: %w", err)
	}
	return tgid, nil
}
