package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otelexecsnoop/execsnoop/internal/ociimage"
)

// elfProgram is the smallest ELF64 file debug/elf reads: a header and, for
// a dynamically linked program, a PT_INTERP program header.
func elfProgram(m elf.Machine, dynamic bool) []byte {
	var b bytes.Buffer
	b.Write([]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	phnum := uint16(0)
	if dynamic {
		phnum = 1
	}
	binary.Write(&b, binary.LittleEndian, struct {
		Type, Machine                                   uint16
		Version                                         uint32
		Entry, Phoff, Shoff                             uint64
		Flags                                           uint32
		Ehsize, Phentsize, Phnum, Shentsize, Shnum, Shx uint16
	}{uint16(elf.ET_EXEC), uint16(m), 1, 0, 64, 0, 0, 64, 56, phnum, 64, 0, 0})
	if dynamic {
		binary.Write(&b, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_INTERP)})
	}
	return b.Bytes()
}

// imageArchive writes an OCI archive as make image lays it out (index.json
// naming an image index naming one manifest a platform), each image holding
// /otelcol-execsnoop in one uncompressed layer.
func imageArchive(t *testing.T, binaries map[string][]byte) string {
	blobs := map[string][]byte{}
	blob := func(mediaType string, b []byte) ociimage.Descriptor {
		sum := sha256.Sum256(b)
		d := ociimage.Descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(b))}
		blobs[d.Digest] = b
		return d
	}
	js := func(mediaType string, v any) ociimage.Descriptor {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return blob(mediaType, b)
	}
	tarOf := func(files map[string][]byte) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for name, body := range files {
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))}); err != nil {
				t.Fatal(err)
			}
			tw.Write(body)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	var idx ociimage.Index
	idx.SchemaVersion, idx.MediaType = 2, ociimage.MediaTypeIndex
	for platform, bin := range binaries {
		goos, arch, _ := strings.Cut(platform, "/")
		var c ociimage.Config
		c.OS, c.Architecture, c.RootFS.Type = goos, arch, "layers"
		layer := blob(ociimage.MediaTypeLayer, tarOf(map[string][]byte{"otelcol-execsnoop": bin}))
		c.RootFS.DiffIDs = []string{layer.Digest}
		m := ociimage.Manifest{SchemaVersion: 2, MediaType: ociimage.MediaTypeManifest, Layers: []ociimage.Descriptor{layer},
			Config: js("application/vnd.oci.image.config.v1+json", c)}
		d := js(ociimage.MediaTypeManifest, m)
		d.Platform = &ociimage.Platform{OS: goos, Architecture: arch}
		idx.Manifests = append(idx.Manifests, d)
	}
	top := ociimage.Index{SchemaVersion: 2, Manifests: []ociimage.Descriptor{js(ociimage.MediaTypeIndex, idx)}}
	files := map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)}
	files["index.json"], _ = json.Marshal(top)
	for d, b := range blobs {
		files["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")] = b
	}
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(path, tarOf(files), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The arm64 guest gets the arm64 variant's binary, byte for byte; any
// other ELF, or a missing variant, stops the run with what is wrong.
func TestCollectorCPIO(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatalf("cpio (Debian's cpio package, from make deps): %v", err)
	}
	arm, x86 := elfProgram(elf.EM_AARCH64, false), elfProgram(elf.EM_X86_64, false)
	image := imageArchive(t, map[string][]byte{"linux/amd64": x86, "linux/arm64": arm})
	dir := t.TempDir()
	out := filepath.Join(dir, "collector.cpio")
	what, err := collectorCPIO(image, "", arm64, out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(what, "linux/arm64 image") || !strings.Contains(what, "EM_AARCH64") {
		t.Errorf("description %q", what)
	}
	unpack := exec.Command("cpio", "-id", "--quiet")
	unpack.Dir, unpack.Stdin = dir, bytes.NewReader(must(os.ReadFile(out)))
	if b, err := unpack.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v %s", err, b)
	}
	if got, err := os.ReadFile(filepath.Join(dir, guestCollector)); err != nil || !bytes.Equal(got, arm) {
		t.Errorf("%s in the cpio: %v, %d bytes, want the image's %d", guestCollector, err, len(got), len(arm))
	}

	for _, c := range []struct {
		name, platform string
		image          string
		want           string
	}{
		{"amd64 variant", "linux/amd64", image, "is an EM_X86_64 ELFCLASS64 program; the arm64 guest runs EM_AARCH64 ones"},
		{"no arm64 variant", "", imageArchive(t, map[string][]byte{"linux/amd64": x86}), "has no linux/arm64 image (it has [linux/amd64])"},
		{"dynamic", "", imageArchive(t, map[string][]byte{"linux/arm64": elfProgram(elf.EM_AARCH64, true)}), "is dynamically linked"},
		{"not ELF", "", imageArchive(t, map[string][]byte{"linux/arm64": []byte("#!/bin/sh\n" + strings.Repeat("# a shell script, not the collector\n", 4))}), "bad magic number"},
	} {
		_, err := collectorCPIO(c.image, c.platform, arm64, filepath.Join(t.TempDir(), "c.cpio"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
