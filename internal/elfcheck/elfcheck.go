// Package elfcheck tells whether a file is what the image, the packages
// and the arm64 guest ship: a static 64-bit ELF program for one machine.
package elfcheck

import (
	"bytes"
	"debug/elf"
	"fmt"
)

// MachineError: the program is for another machine or class.
type MachineError struct {
	Got   elf.Machine
	Class elf.Class
	Want  elf.Machine
}

func (e *MachineError) Error() string {
	return fmt.Sprintf("is an %s %s program, want ELFCLASS64 %s", e.Got, e.Class, e.Want)
}

// Static returns nil when data is a static ELFCLASS64 program for want,
// else what it is instead (a *MachineError for the wrong machine).
func Static(data []byte, want elf.Machine) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("is not ELF: %w", err)
	}
	defer f.Close()
	if f.Machine != want || f.Class != elf.ELFCLASS64 {
		return &MachineError{Got: f.Machine, Class: f.Class, Want: want}
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("is dynamically linked (%s), want static (CGO_ENABLED=0)", p.Type)
		}
	}
	return nil
}
