// Package ociimage reads an OCI image archive: a tar of an OCI image layout
// (oci-layout, index.json, blobs/sha256/...), as `buildah push` and
// `buildah manifest push` write to oci-archive:FILE. Every blob it returns
// has been checked against the size and sha256 digest it was asked for,
// and every layer's uncompressed tar against the config's diff_id.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Media types (OCI image-spec; Docker's manifest list for images pushed
// in Docker's format).
const (
	MediaTypeIndex          = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest       = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeLayer          = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeLayerGzip      = "application/vnd.oci.image.layer.v1.tar+gzip"
	AnnotationRefName       = "org.opencontainers.image.ref.name"
	maxJSON             int = 4 << 20
)

type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

func (p *Platform) String() string {
	if p == nil {
		return "(no platform)"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *Platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Index is index.json or an image index blob.
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []Descriptor `json:"manifests"`
}

type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Config is the part of an image configuration the tests read.
type Config struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
	Config       struct {
		User       string            `json:"User,omitempty"`
		Entrypoint []string          `json:"Entrypoint,omitempty"`
		Cmd        []string          `json:"Cmd,omitempty"`
		Labels     map[string]string `json:"Labels,omitempty"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// Archive is an opened archive, its files held in memory (an image of
// this project is tens of MiB).
type Archive struct {
	name  string
	files map[string][]byte
}

// Open reads the whole archive.
func Open(file string) (*Archive, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a := &Archive{name: file, files: map[string][]byte{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", file, h.Name, err)
		}
		a.files[path.Clean(h.Name)] = b
	}
	layout, ok := a.files["oci-layout"]
	if !ok {
		return nil, fmt.Errorf("%s: no oci-layout file: not an OCI image layout archive", file)
	}
	var l struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(layout, &l); err != nil || l.Version != "1.0.0" {
		return nil, fmt.Errorf("%s: oci-layout %q: want imageLayoutVersion 1.0.0", file, layout)
	}
	return a, nil
}

// Index is the archive's index.json.
func (a *Archive) Index() (*Index, error) {
	b, ok := a.files["index.json"]
	if !ok {
		return nil, fmt.Errorf("%s: no index.json", a.name)
	}
	var idx Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%s: index.json: %v", a.name, err)
	}
	return &idx, nil
}

// Blob returns the blob d names, checked against d's size and digest.
func (a *Archive) Blob(d Descriptor) ([]byte, error) {
	alg, hexDigest, ok := strings.Cut(d.Digest, ":")
	if !ok || alg != "sha256" || len(hexDigest) != 64 {
		return nil, fmt.Errorf("%s: digest %q: want sha256:<64 hex digits>", a.name, d.Digest)
	}
	b, ok := a.files["blobs/sha256/"+hexDigest]
	if !ok {
		return nil, fmt.Errorf("%s: blob %s (%s) is missing", a.name, d.Digest, d.MediaType)
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("%s: blob %s is %d bytes, its descriptor says %d", a.name, d.Digest, len(b), d.Size)
	}
	if got := digestOf(b); got != d.Digest {
		return nil, fmt.Errorf("%s: blob %s has digest %s: the archive is corrupt", a.name, d.Digest, got)
	}
	return b, nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (a *Archive) blobJSON(d Descriptor, v any) error {
	if d.Size > int64(maxJSON) {
		return fmt.Errorf("%s: %s blob %s is %d bytes, more than a JSON document here can be", a.name, d.MediaType, d.Digest, d.Size)
	}
	b, err := a.Blob(d)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %s blob %s: %v", a.name, d.MediaType, d.Digest, err)
	}
	return nil
}

func (a *Archive) ImageIndex(d Descriptor) (*Index, error) {
	var idx Index
	return &idx, a.blobJSON(d, &idx)
}

func (a *Archive) Manifest(d Descriptor) (*Manifest, error) {
	var m Manifest
	return &m, a.blobJSON(d, &m)
}

func (a *Archive) Config(d Descriptor) (*Config, error) {
	var c Config
	return &c, a.blobJSON(d, &c)
}

// Layer returns a layer's uncompressed tar, checked against diffID (the
// config's rootfs.diff_ids entry for it).
func (a *Archive) Layer(d Descriptor, diffID string) ([]byte, error) {
	b, err := a.Blob(d)
	if err != nil {
		return nil, err
	}
	switch d.MediaType {
	case MediaTypeLayer:
	case MediaTypeLayerGzip:
		z, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: layer %s: %v", a.name, d.Digest, err)
		}
		if b, err = io.ReadAll(z); err != nil {
			return nil, fmt.Errorf("%s: layer %s: %v", a.name, d.Digest, err)
		}
	default:
		return nil, fmt.Errorf("%s: layer %s has media type %q; this reader knows %s and %s", a.name, d.Digest, d.MediaType, MediaTypeLayer, MediaTypeLayerGzip)
	}
	if got := digestOf(b); got != diffID {
		return nil, fmt.Errorf("%s: layer %s uncompressed has digest %s, the config's diff_id says %s", a.name, d.Digest, got, diffID)
	}
	return b, nil
}
