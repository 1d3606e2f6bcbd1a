//go:build linux && (amd64 || arm64)

package bpf

import (
	"github.com/cilium/ebpf/btf"
)

// exitHasGroupDead reports whether the kernel's sched_process_exit
// tracepoint passes group_dead (Linux 6.16 on), from its BTF: the
// tracepoint's typedef is a pointer to a function of (void *, task, bool).
func exitHasGroupDead() bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return false
	}
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_sched_process_exit", &td); err != nil {
		return false
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return false
	}
	proto, ok := ptr.Target.(*btf.FuncProto)
	return ok && len(proto.Params) >= 3
}

// KernelLimits names what this kernel cannot do of the exit accounting and
// the trace-context lookup, decided from its BTF once; empty when it can
// do all of it. Callers log it once at start-up.
func KernelLimits() []string {
	var limits []string
	if !exitHasGroupDead() {
		limits = append(limits, "sched_process_exit has no group_dead argument (before Linux 6.16): the last thread is told by signal->live, so two threads exiting at once may both report the process's exit")
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return append(limits, "no kernel BTF: "+err.Error())
	}
	var io *btf.Struct
	if spec.TypeByName("task_io_accounting", &io) != nil || !hasMember(io, "read_bytes") {
		limits = append(limits, "the kernel does not account storage I/O (CONFIG_TASK_IO_ACCOUNTING): exit records carry no execsnoop.process.disk.io.read/.write")
	}
	return limits
}

func hasMember(s *btf.Struct, name string) bool {
	for _, m := range s.Members {
		if m.Name == name {
			return true
		}
	}
	return false
}
