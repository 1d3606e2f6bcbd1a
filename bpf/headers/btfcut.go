//go:build ignore

// btfcut writes the kernel BTF found inside a kernel image as a raw BTF
// file that bpftool can dump: go run btfcut.go <vmlinuz> <out.btf>.
// It takes a gzip-compressed image, an EFI zboot image (arm64's
// vmlinuz: a PE file whose payload is the compressed Image; both are
// unwrapped by internal/kimage) or an uncompressed one, and finds the
// .BTF section's contents by their header (magic 0xeB9F, version 1), checked by parsing them.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"

	"github.com/cilium/ebpf/btf"

	"github.com/otelexecsnoop/execsnoop/internal/kimage"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go run btfcut.go <vmlinuz> <out.btf>")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "btfcut:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	img, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	if img, err = kimage.Unwrap(img); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	blob, types, err := findBTF(img)
	if err != nil {
		// x86's bzImage: setup code, then an xz or zstd stream.
		var inner []byte
		if inner, err = bzPayload(img); err == nil {
			blob, types, err = findBTF(inner)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	fmt.Fprintf(os.Stderr, "btfcut: %d bytes of BTF, %d types\n", len(blob), types)
	return os.WriteFile(out, blob, 0o644)
}

// bzPayload decompresses the kernel inside an x86 bzImage with xz or
// zstd (Debian's amd64 kernels use one of them; Go has neither), like
// linux's scripts/extract-vmlinux: from the first stream magic on,
// trailing bytes ignored.
func bzPayload(img []byte) ([]byte, error) {
	if len(img) < 0x206 || string(img[0x202:0x206]) != "HdrS" {
		return nil, fmt.Errorf("not a bzImage, and no BTF found")
	}
	for _, c := range []struct {
		magic []byte
		cmd   []string
	}{
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, []string{"xz", "-dcq"}},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, []string{"zstd", "-dcq"}},
	} {
		at := bytes.Index(img, c.magic)
		if at < 0 {
			continue
		}
		cmd := exec.Command(c.cmd[0], c.cmd[1:]...)
		cmd.Stdin = bytes.NewReader(img[at:])
		out, err := cmd.Output() // trailing data makes it exit non-zero
		if len(out) > 0 {
			return out, nil
		}
		return nil, fmt.Errorf("%s: %v", c.cmd[0], err)
	}
	return nil, fmt.Errorf("bzImage with neither an xz nor a zstd payload")
}

// findBTF returns the largest well-formed BTF blob in img: a header
// (struct btf_header, 24 bytes, little-endian) whose type and string
// sections lie inside img, and which cilium/ebpf parses.
func findBTF(img []byte) ([]byte, int, error) {
	var best []byte
	bestTypes := 0
	magic := []byte{0x9f, 0xeb, 0x01, 0x00}
	for i := 0; ; {
		j := bytes.Index(img[i:], magic)
		if j < 0 {
			break
		}
		at := i + j
		i = at + 1
		if at+24 > len(img) {
			break
		}
		h := img[at:]
		hdrLen := binary.LittleEndian.Uint32(h[4:])
		typeOff, typeLen := binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:])
		strOff, strLen := binary.LittleEndian.Uint32(h[16:]), binary.LittleEndian.Uint32(h[20:])
		if hdrLen != 24 || typeOff != 0 || strOff < typeLen {
			continue
		}
		end := uint64(at) + uint64(hdrLen) + uint64(strOff) + uint64(strLen)
		if end > uint64(len(img)) || int(end)-at <= len(best) {
			continue
		}
		blob := img[at:end]
		spec, err := btf.LoadSpecFromReader(bytes.NewReader(blob))
		if err != nil {
			continue
		}
		n := 0
		for range spec.All() {
			n++
		}
		best, bestTypes = blob, n
	}
	if best == nil {
		return nil, 0, fmt.Errorf("no BTF (magic 0xeB9F) found in the %d-byte image", len(img))
	}
	return best, bestTypes, nil
}
