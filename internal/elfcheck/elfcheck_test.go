package elfcheck

import (
	"debug/elf"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
)

// The test binary itself (Go, CGO off or on) and /bin/true (dynamic).
func TestStatic(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the machines below are amd64's")
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	var me *MachineError
	if err := Static(self, elf.EM_AARCH64); !errors.As(err, &me) || me.Got != elf.EM_X86_64 {
		t.Errorf("an amd64 program checked for arm64: %v, want a MachineError naming EM_X86_64", err)
	}
	if err := Static([]byte("#!/bin/sh\n"), elf.EM_X86_64); err == nil || !strings.HasPrefix(err.Error(), "is not ELF") {
		t.Errorf("a script: %v, want not ELF", err)
	}
	dynamic, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if err := Static(dynamic, elf.EM_X86_64); err == nil || !strings.HasPrefix(err.Error(), "is dynamically linked") {
		t.Errorf("/bin/true: %v, want dynamically linked", err)
	}
}
