package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
)

// Image is one image manifest of the archive with its config.
type Image struct {
	// Platform is what the index that names the manifest says (nil when
	// index.json names the manifest directly without one).
	Platform   *Platform
	Descriptor Descriptor
	Manifest   *Manifest
	Config     *Config
}

// Images walks index.json and the image indexes it names down to the
// image manifests, reading (and so checking) each index, manifest and
// config on the way.
func (a *Archive) Images() ([]Image, error) {
	top, err := a.Index()
	if err != nil {
		return nil, err
	}
	var out []Image
	var walk func(ds []Descriptor, depth int) error
	walk = func(ds []Descriptor, depth int) error {
		if depth > 4 {
			return fmt.Errorf("%s: image indexes nested more than 4 deep", a.name)
		}
		for _, d := range ds {
			switch d.MediaType {
			case MediaTypeIndex, MediaTypeDockerList:
				idx, err := a.ImageIndex(d)
				if err != nil {
					return err
				}
				if err := walk(idx.Manifests, depth+1); err != nil {
					return err
				}
			case MediaTypeManifest:
				m, err := a.Manifest(d)
				if err != nil {
					return err
				}
				c, err := a.Config(m.Config)
				if err != nil {
					return err
				}
				if len(c.RootFS.DiffIDs) != len(m.Layers) {
					return fmt.Errorf("%s: manifest %s has %d layers, its config %d diff_ids", a.name, d.Digest, len(m.Layers), len(c.RootFS.DiffIDs))
				}
				out = append(out, Image{Platform: d.Platform, Descriptor: d, Manifest: m, Config: c})
			default:
				return fmt.Errorf("%s: %s has media type %q, neither an image index nor an OCI image manifest", a.name, d.Digest, d.MediaType)
			}
		}
		return nil
	}
	return out, walk(top.Manifests, 0)
}

// File returns the regular file name (an absolute path) of img's
// filesystem: its layers applied in order, whiteouts (.wh.NAME, and
// .wh..wh..opq for a directory) removing what lower layers had.
func (a *Archive) File(img Image, name string) ([]byte, error) {
	name = path.Clean("/" + name)
	var found []byte
	for i, l := range img.Manifest.Layers {
		layer, err := a.Layer(l, img.Config.RootFS.DiffIDs[i])
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(bytes.NewReader(layer))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: layer %s: %v", a.name, l.Digest, err)
			}
			p := path.Clean("/" + h.Name)
			dir, base := path.Split(p)
			switch {
			case base == ".wh..wh..opq" && strings.HasPrefix(name, dir):
				found = nil
			case strings.HasPrefix(base, ".wh."):
				if gone := path.Join(dir, strings.TrimPrefix(base, ".wh.")); name == gone || strings.HasPrefix(name, gone+"/") {
					found = nil
				}
			case p == name && h.Typeflag == tar.TypeReg:
				if found, err = io.ReadAll(tr); err != nil {
					return nil, fmt.Errorf("%s: layer %s: %s: %v", a.name, l.Digest, name, err)
				}
			case p == name:
				return nil, fmt.Errorf("%s: %s in layer %s is not a regular file (type %q)", a.name, name, l.Digest, h.Typeflag)
			}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%s: the %s image has no file %s", a.name, img.Platform, name)
	}
	return found, nil
}
