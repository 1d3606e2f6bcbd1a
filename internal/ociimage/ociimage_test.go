package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// layout builds an archive the way buildah lays one out: index.json names
// an image index, which names one manifest per platform.
type layout struct {
	t     *testing.T
	blobs map[string][]byte
}

func (l *layout) blob(mediaType string, b []byte) Descriptor {
	d := Descriptor{MediaType: mediaType, Digest: digestOf(b), Size: int64(len(b))}
	l.blobs[d.Digest] = b
	return d
}

func (l *layout) json(mediaType string, v any) Descriptor {
	b, err := json.Marshal(v)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.blob(mediaType, b)
}

func tarOf(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (l *layout) image(arch string, layers ...map[string]string) Descriptor {
	var m Manifest
	var c Config
	c.Architecture, c.OS = arch, "linux"
	c.RootFS.Type = "layers"
	for _, files := range layers {
		raw := tarOf(l.t, files)
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		_, _ = w.Write(raw)
		_ = w.Close()
		m.Layers = append(m.Layers, l.blob(MediaTypeLayerGzip, z.Bytes()))
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, digestOf(raw))
	}
	m.SchemaVersion, m.MediaType = 2, MediaTypeManifest
	m.Config = l.json("application/vnd.oci.image.config.v1+json", c)
	d := l.json(MediaTypeManifest, m)
	d.Platform = &Platform{OS: "linux", Architecture: arch}
	return d
}

func (l *layout) write(top Index) string {
	files := map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`}
	b, _ := json.Marshal(top)
	files["index.json"] = string(b)
	for d, blob := range l.blobs {
		files["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")] = string(blob)
	}
	file := filepath.Join(l.t.TempDir(), "image.tar")
	if err := os.WriteFile(file, tarOf(l.t, files), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return file
}

func twoPlatforms(t *testing.T) (*layout, Index) {
	l := &layout{t: t, blobs: map[string][]byte{}}
	amd := l.image("amd64", map[string]string{"app": "amd64 binary", "etc/gone": "x", "etc/keep": "k"},
		map[string]string{"etc/.wh.gone": ""})
	arm := l.image("arm64", map[string]string{"app": "arm64 binary"})
	idx := l.json(MediaTypeIndex, Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{amd, arm}})
	idx.Annotations = map[string]string{AnnotationRefName: "localhost/x:1"}
	return l, Index{SchemaVersion: 2, Manifests: []Descriptor{idx}}
}

func TestReadsEveryPlatformAndItsFiles(t *testing.T) {
	l, top := twoPlatforms(t)
	a, err := Open(l.write(top))
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := a.Images()
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[0].Platform.String() != "linux/amd64" || imgs[1].Platform.String() != "linux/arm64" {
		t.Fatalf("images %+v, want linux/amd64 and linux/arm64", imgs)
	}
	for _, img := range imgs {
		b, err := a.File(img, "/app")
		if err != nil || string(b) != img.Config.Architecture+" binary" {
			t.Errorf("%s: /app %q, %v", img.Platform, b, err)
		}
	}
	if b, err := a.File(imgs[0], "/etc/keep"); err != nil || string(b) != "k" {
		t.Errorf("/etc/keep %q, %v", b, err)
	}
	if _, err := a.File(imgs[0], "/etc/gone"); err == nil || !strings.Contains(err.Error(), "no file /etc/gone") {
		t.Errorf("a whited-out file: %v, want no file", err)
	}
}

// A blob whose bytes do not match its digest, or a layer whose contents do
// not match the config's diff_id, is an error naming it.
func TestCorruptionIsFound(t *testing.T) {
	t.Run("blob", func(t *testing.T) {
		l, top := twoPlatforms(t)
		for d, b := range l.blobs {
			if bytes.Contains(b, []byte(`"architecture":"arm64"`)) { // the arm64 config
				c := bytes.Clone(b)
				c[len(c)-2] ^= 1
				l.blobs[d] = c
			}
		}
		a, err := Open(l.write(top))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Images(); err == nil || !strings.Contains(err.Error(), "the archive is corrupt") {
			t.Fatalf("Images: %v, want the corrupt blob named", err)
		}
	})
	t.Run("diff_id", func(t *testing.T) {
		l := &layout{t: t, blobs: map[string][]byte{}}
		img := l.image("arm64", map[string]string{"app": "x"})
		m := map[string]any{}
		for d, b := range l.blobs {
			if bytes.Contains(b, []byte(`"diff_ids"`)) {
				_ = json.Unmarshal(b, &m)
				m["rootfs"] = map[string]any{"type": "layers", "diff_ids": []string{digestOf([]byte("other"))}}
				delete(l.blobs, d)
			}
		}
		var man Manifest
		_ = json.Unmarshal(l.blobs[img.Digest], &man)
		delete(l.blobs, img.Digest)
		man.Config = l.json(man.Config.MediaType, m)
		img = l.json(MediaTypeManifest, man)
		a, err := Open(l.write(Index{SchemaVersion: 2, Manifests: []Descriptor{img}}))
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := a.Images()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.File(imgs[0], "/app"); err == nil || !strings.Contains(err.Error(), "diff_id") {
			t.Fatalf("File: %v, want the diff_id mismatch named", err)
		}
	})
}
