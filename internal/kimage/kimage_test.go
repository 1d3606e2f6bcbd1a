package kimage

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"testing"
)

func gz(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// An EFI zboot image (arm64's vmlinuz) and a gzip stream unwrap to the
// Image; anything else is returned unchanged.
func TestUnwrap(t *testing.T) {
	image := []byte("ARMd kernel image text")
	payload := gz(t, image)
	zboot := make([]byte, 128)
	copy(zboot, "MZ")
	copy(zboot[4:], "zimg")
	binary.LittleEndian.PutUint32(zboot[8:], 128)
	binary.LittleEndian.PutUint32(zboot[12:], uint32(len(payload)))
	copy(zboot[24:], "gzip")
	zboot = append(zboot, payload...)
	for name, in := range map[string][]byte{"zboot": zboot, "gzip": payload, "plain": image} {
		out, err := Unwrap(in)
		if err != nil || !bytes.Equal(out, image) {
			t.Errorf("%s: %q, %v", name, out, err)
		}
	}
	binary.LittleEndian.PutUint32(zboot[12:], uint32(len(zboot)))
	if _, err := Unwrap(zboot); err == nil {
		t.Error("a payload past the end unwrapped")
	}
	copy(zboot[24:], "zstd")
	binary.LittleEndian.PutUint32(zboot[12:], uint32(len(payload)))
	if _, err := Unwrap(zboot); err == nil {
		t.Error("a zstd payload unwrapped")
	}
}
