package exehash

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"io"
)

// Notes larger than this are not read (a build id note is tens of bytes).
const maxNoteBytes = 64 << 10

// The ELF notes that carry build ids.
const (
	ntGNUBuildID = 3 // NT_GNU_BUILD_ID, name "GNU"
	ntGoBuildID  = 4 // the Go linker's note, name "Go" (cmd/internal/buildid)
)

// BuildIDs returns the GNU build id (lowercase hex, as readelf -n prints
// it) and the Go build id (as go tool buildid prints it) from the ELF
// notes of r, each "" when absent or r is not ELF. The notes are found
// through the program headers (PT_NOTE), which stripping keeps, and
// failing that through the note sections.
func BuildIDs(r io.ReaderAt) (gnu, goID string) {
	f, err := elf.NewFile(r)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	visit := func(data []byte) {
		for _, n := range parseNotes(data, f.ByteOrder) {
			switch {
			case n.typ == ntGNUBuildID && n.name == "GNU" && gnu == "":
				gnu = hex.EncodeToString(n.desc)
			case n.typ == ntGoBuildID && n.name == "Go" && goID == "":
				goID = string(n.desc)
			}
		}
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_NOTE && p.Filesz <= maxNoteBytes {
			if data, err := io.ReadAll(p.Open()); err == nil {
				visit(data)
			}
		}
	}
	if gnu == "" || goID == "" {
		for _, s := range f.Sections {
			if s.Type == elf.SHT_NOTE && s.Size <= maxNoteBytes {
				if data, err := s.Data(); err == nil {
					visit(data)
				}
			}
		}
	}
	return gnu, goID
}

type note struct {
	name string
	typ  uint32
	desc []byte
}

// parseNotes splits an ELF note area: namesz, descsz, type (4 bytes each),
// then the name and the descriptor, each padded to 4 bytes.
func parseNotes(data []byte, order binary.ByteOrder) []note {
	var out []note
	pad := func(n uint32) uint64 { return (uint64(n) + 3) &^ 3 }
	for len(data) >= 12 {
		namesz, descsz, typ := order.Uint32(data), order.Uint32(data[4:]), order.Uint32(data[8:])
		data = data[12:]
		if pad(namesz)+pad(descsz) > uint64(len(data)) {
			break
		}
		name := string(bytes.TrimRight(data[:namesz], "\x00"))
		desc := data[pad(namesz) : pad(namesz)+uint64(descsz)]
		out = append(out, note{name: name, typ: typ, desc: desc})
		data = data[pad(namesz)+pad(descsz):]
	}
	return out
}
