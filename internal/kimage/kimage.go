// Package kimage unwraps a Linux kernel image as Debian ships it in
// /boot/vmlinuz-*: arm64's is an EFI zboot image (a PE file whose payload
// is the gzip-compressed Image), others may be a plain gzip stream. Both
// bpf/headers/btfcut.go (the BTF inside the image) and test/kernels
// (qemu-system-aarch64 -kernel boots the uncompressed Image) use it.
package kimage

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
)

// Unwrap unwraps an EFI zboot image (linux drivers/firmware/efi/libstub/
// zboot-header.S: "MZ", then "zimg", the payload's offset and size, and
// the compression's name at 24) and gunzips a gzip stream; any other image
// is returned as it is.
func Unwrap(img []byte) ([]byte, error) {
	if len(img) > 64 && string(img[0:2]) == "MZ" && string(img[4:8]) == "zimg" {
		off := binary.LittleEndian.Uint32(img[8:])
		size := binary.LittleEndian.Uint32(img[12:])
		comp := string(bytes.TrimRight(img[24:32], "\x00"))
		if uint64(off)+uint64(size) > uint64(len(img)) {
			return nil, fmt.Errorf("EFI zboot payload %d+%d is past the end (%d bytes)", off, size, len(img))
		}
		if comp != "gzip" {
			return nil, fmt.Errorf("EFI zboot payload is %s-compressed; only gzip is handled", comp)
		}
		img = img[off : off+size]
	}
	if len(img) > 2 && img[0] == 0x1f && img[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(img))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	}
	return img, nil
}
