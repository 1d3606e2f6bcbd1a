package bpf

import (
	"fmt"
	"strings"
)

// OldestKernel is the oldest Linux release the probe is tested on (in
// virtual machines, by `make test-kernels`).
const OldestKernel = "5.10"

// KernelReport is what Open chose for the running kernel, decided once at
// load time from what the kernel has (its BTF, which programs load).
type KernelReport struct {
	Kernel    string    `json:"kernel"` // uname -r
	Transport Transport `json:"transport"`
	// FailedExecHook is fexit or sys_exit, or empty when failed execs are
	// not reported.
	FailedExecHook FailedExecHook `json:"failed_exec_hook"`
	// Features name what the kernel offered: user_regs, how the saved
	// syscall registers are found (bpf_task_pt_regs, 5.15+, or the top of
	// the kernel stack), and failed_exec_attach, the functions or
	// tracepoint the failed-exec hook is attached to.
	Features map[string]string `json:"features"`
	// Notes say what this kernel cannot do and what it costs, one line each.
	Notes []string `json:"notes,omitempty"`
}

// String is the one start-up line that says what the kernel got.
func (r KernelReport) String() string {
	hook := string(r.FailedExecHook)
	if hook == "" {
		hook = "off"
	}
	if at := r.Features["failed_exec_attach"]; at != "" {
		hook += " (" + at + ")"
	}
	line := fmt.Sprintf("kernel %s: transport %s, failed execs via %s, user registers via %s",
		r.Kernel, r.Transport, hook, r.Features["user_regs"])
	if len(r.Notes) > 0 {
		line += "; " + strings.Join(r.Notes, "; ")
	}
	return line
}
