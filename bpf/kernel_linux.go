//go:build linux && (amd64 || arm64)

package bpf

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// kernelInfo is what the probe needs to know about the running kernel,
// read from its BTF: the same facts the program's CO-RE checks see.
type kernelInfo struct {
	release    string
	taskPtRegs bool // the bpf_task_pt_regs helper (5.15+)
	bprmExecve int  // bprm_execve's parameter count; 0 when it is not in BTF
	sysExecve  bool // sysExecveFuncs are in BTF
}

func inspectKernel() (kernelInfo, error) {
	var k kernelInfo
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		k.release = unix.ByteSliceToString(uts.Release[:])
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return k, fmt.Errorf("kernel %s exposes no usable BTF (/sys/kernel/btf/vmlinux: %v): execsnoop needs "+
			"a kernel built with CONFIG_DEBUG_INFO_BTF=y, Linux %s or later (standard on current distributions)",
			k.release, err, OldestKernel)
	}
	var ids *btf.Enum
	if err := spec.TypeByName("bpf_func_id", &ids); err == nil {
		for _, v := range ids.Values {
			if v.Name == "BPF_FUNC_task_pt_regs" {
				k.taskPtRegs = true
			}
		}
	}
	var fn *btf.Func
	if err := spec.TypeByName("bprm_execve", &fn); err == nil {
		if proto, ok := fn.Type.(*btf.FuncProto); ok {
			k.bprmExecve = len(proto.Params)
		}
	}
	k.sysExecve = true
	for _, name := range sysExecveFuncs {
		if err := spec.TypeByName(name, &fn); err != nil || !takesStructPointer(fn) {
			k.sysExecve = false
		}
	}
	return k, nil
}

// takesStructPointer reports whether fn's first parameter points to a
// complete struct: 5.10's BTF has the syscall wrappers, but with struct
// pt_regs only forward-declared there, which fexit cannot read.
func takesStructPointer(fn *btf.Func) bool {
	proto, ok := fn.Type.(*btf.FuncProto)
	if !ok || len(proto.Params) == 0 {
		return false
	}
	ptr, ok := btf.UnderlyingType(proto.Params[0].Type).(*btf.Pointer)
	if !ok {
		return false
	}
	_, ok = btf.UnderlyingType(ptr.Target).(*btf.Struct)
	return ok
}

func (k kernelInfo) userRegs() string {
	if k.taskPtRegs {
		return "bpf_task_pt_regs"
	}
	return "kernel stack"
}

// sysExecveFuncs are the exec syscalls' wrappers (ARCH_HAS_SYSCALL_WRAPPER),
// named by architecture.
var sysExecveFuncs = map[string][]string{
	"amd64": {"__x64_sys_execve", "__x64_sys_execveat"},
	"arm64": {"__arm64_sys_execve", "__arm64_sys_execveat"},
}[runtime.GOARCH]

// fexitAttach is a failed-exec fexit program and a function it attaches to.
type fexitAttach struct{ program, function string }

// fexitTargets are where fexit programs see failed execs on this kernel,
// or why there is no such place. The syscall wrappers see every failure;
// bprm_execve before 6.7 (4 parameters) sees all but those raised before
// it; from 6.7 on it runs after the file is opened and would miss ENOENT.
func (k kernelInfo) fexitTargets() ([]fexitAttach, error) {
	if k.sysExecve {
		var targets []fexitAttach
		for _, fn := range sysExecveFuncs {
			targets = append(targets, fexitAttach{execsnoopProgHandleExecFailureFexit, fn})
		}
		return targets, nil
	}
	if k.bprmExecve == 4 {
		return []fexitAttach{{execsnoopProgHandleExecFailureFexitBprm, "bprm_execve"}}, nil
	}
	return nil, errors.New("neither " + strings.Join(sysExecveFuncs, "/") + " nor a bprm_execve that opens the file " +
		"(before 6.7) is in the kernel's BTF")
}

var failedExecPrograms = []string{
	execsnoopProgHandleExecFailure,
	execsnoopProgHandleExecFailureFexit,
	execsnoopProgHandleExecFailureFexitBprm,
}

// load loads the maps and the programs every kernel runs. The failed-exec
// programs are loaded later, one of them, by attachFailedExecHook.
func (p *Probe) load(spec *ebpf.CollectionSpec, k kernelInfo) error {
	base := spec.Copy()
	for _, name := range failedExecPrograms {
		delete(base.Programs, name)
	}
	coll, err := ebpf.NewCollection(base)
	if err != nil {
		return explainKernel(k, fmt.Errorf("loading the BPF program: %w", err))
	}
	// Every map, .rodata included, for loading a failed-exec program
	// against the same maps.
	p.maps = maps.Clone(coll.Maps)
	if err := coll.Assign(&p.objs); err != nil {
		coll.Close()
		return fmt.Errorf("loading the BPF program: %w", err)
	}
	p.rest = coll
	return nil
}

// loadWithTraceContext loads the programs and records whether they look
// for trace context in the environment. The scan verifies on every kernel
// the probe supports (5.10 on, checked in VMs by test/kernels), so a
// refusal is an error like any other program's.
func (p *Probe) loadWithTraceContext(spec *ebpf.CollectionSpec, k kernelInfo) error {
	if err := p.load(spec, k); err != nil {
		return err
	}
	p.report.Features["trace_context"] = "off"
	if p.opts.TraceContext {
		p.report.Features["trace_context"] = "env"
	}
	return nil
}

// attachFailedExecHook loads and attaches the failed-exec program that
// the options and the kernel call for, and records the choice.
func (p *Probe) attachFailedExecHook(spec *ebpf.CollectionSpec, k kernelInfo) error {
	want := p.opts.FailedExecHook
	if want == HookAuto || want == HookFexit {
		err := p.tryFailedExecProgram(spec, k, HookFexit)
		if err == nil {
			return nil
		}
		if want == HookFexit {
			return fmt.Errorf("failed exec hook fexit: %w; use the sys_exit failed-exec hook, or auto", err)
		}
		p.report.Notes = append(p.report.Notes, fmt.Sprintf(
			"no fexit: %v, so failed execs are caught at every syscall's exit, which every syscall pays for", err))
	}
	return p.tryFailedExecProgram(spec, k, HookSysExit)
}

func (p *Probe) tryFailedExecProgram(spec *ebpf.CollectionSpec, k kernelInfo, hook FailedExecHook) error {
	targets := []fexitAttach{{execsnoopProgHandleExecFailure, "sys_exit"}}
	if hook == HookFexit {
		var err error
		if targets, err = k.fexitTargets(); err != nil {
			return err
		}
	}
	var (
		functions []string
		progs     []*ebpf.Program
		links     []link.Link
	)
	for _, t := range targets {
		ps := spec.Programs[t.program].Copy()
		if hook == HookFexit {
			ps.AttachTo = t.function
		}
		one := &ebpf.CollectionSpec{Maps: spec.Maps, Programs: map[string]*ebpf.ProgramSpec{t.program: ps}, Types: spec.Types}
		prog, l, err := p.loadAndAttach(one, t.program)
		if err != nil {
			for i := range links {
				links[i].Close()
				progs[i].Close()
			}
			if hook == HookFexit {
				return fexitRefused(t.function, err)
			}
			return explainKernel(k, err)
		}
		progs, links = append(progs, prog), append(links, l)
		functions = append(functions, t.function)
	}
	p.failProgs = progs
	p.links = append(p.links, links...)
	p.report.FailedExecHook = hook
	p.report.Features["failed_exec_attach"] = strings.Join(functions, ",")
	if hook == HookFexit && !k.sysExecve {
		p.report.Notes = append(p.report.Notes,
			"failed execs via fexit on bprm_execve: errors before it (E2BIG, EFAULT while copying argv) are not seen")
	}
	return nil
}

// fexitRefused says in our words why an fexit program did not go on
// function. The other programs loaded with the same privileges, so an EPERM
// here is the kernel refusing fexit itself (no BPF trampolines on this
// kernel or architecture, lockdown), not a privilege or MEMLOCK problem as
// the BPF library's generic hint for EPERM would suggest.
func fexitRefused(function string, err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("the kernel refused an fexit program on %s although it loaded the others (no BPF trampolines here)", function)
	}
	return fmt.Errorf("the kernel refused an fexit program on %s: %w", function, err)
}

// loadAndAttach loads the one program of spec against the probe's maps and
// attaches it.
func (p *Probe) loadAndAttach(spec *ebpf.CollectionSpec, name string) (*ebpf.Program, link.Link, error) {
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: p.maps})
	if err != nil {
		return nil, nil, fmt.Errorf("loading %s: %w", name, err)
	}
	prog := coll.DetachProgram(name)
	coll.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		prog.Close()
		return nil, nil, fmt.Errorf("attaching %s: %w", name, err)
	}
	return prog, l, nil
}

// explainKernel adds to explain what the kernel is and the oldest one that
// works, for errors that a missing kernel feature can cause.
func explainKernel(k kernelInfo, err error) error {
	err = explain(err)
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("kernel %s: %w (execsnoop works on Linux %s and later with BTF)", k.release, err, OldestKernel)
	}
	return err
}
