package main

import (
	"debug/elf"
	"time"
)

// arch is what differs between the guests' architectures: the Debian
// architecture of the kernel and tools, the Go one of the guest's
// programs, and how QEMU emulates the machine.
type arch struct {
	Debian  string // amd64, arm64
	GOARCH  string
	QEMU    string   // the system emulator
	QEMUPkg string   // the Debian package holding it
	Machine []string // QEMU's machine and CPU
	Console string   // the serial console's device in the guest
	// Slowdown multiplies the tests' deadlines and the machine's bound:
	// TCG emulates arm64 on this amd64 host slower than it runs x86.
	Slowdown int
	// Libdir is the multiarch directory of Debian's shared libraries.
	Libdir string
	ELF    elf.Machine // of the guest's programs
}

var (
	amd64 = arch{Debian: "amd64", GOARCH: "amd64", QEMU: "qemu-system-x86_64", QEMUPkg: "qemu-system-x86",
		Machine: []string{"-cpu", "max"}, Console: "ttyS0", Slowdown: 1, Libdir: "x86_64-linux-gnu", ELF: elf.EM_X86_64}
	// arm64: the virt board; -cpu max with pauth-impdef=on (QEMU's
	// cheaper pointer-authentication hash: plain max emulates QARMA and is
	// 2.5x slower); -nic none, else QEMU looks for the virtio NIC's
	// efi-virtio.rom; the PL011 UART (ttyAMA0) is built into Debian's
	// arm64 kernels, virtio is a module in 5.10 and 6.1.
	arm64 = arch{Debian: "arm64", GOARCH: "arm64", QEMU: "qemu-system-aarch64", QEMUPkg: "qemu-system-arm",
		Machine: []string{"-M", "virt", "-cpu", "max,pauth-impdef=on", "-nic", "none"}, Console: "ttyAMA0",
		Slowdown: 2, Libdir: "aarch64-linux-gnu", ELF: elf.EM_AARCH64}
)

// timeout is the bound of one machine of this architecture.
func (a arch) timeout(d time.Duration) time.Duration { return d * time.Duration(a.Slowdown) }

// Platform is the OCI platform of the guest's programs.
func (a arch) Platform() string { return "linux/" + a.GOARCH }
