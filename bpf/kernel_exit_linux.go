//go:build linux && amd64

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
