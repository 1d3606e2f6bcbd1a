//go:build linux

package k8s

import (
	"debug/elf"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/otelexecsnoop/execsnoop/internal/elfcheck"
	"github.com/otelexecsnoop/execsnoop/internal/ociimage"
)

// The ELF machine a platform's binaries are built for.
var platformMachines = map[string]elf.Machine{
	"linux/amd64": elf.EM_X86_64,
	"linux/arm64": elf.EM_AARCH64,
}

// TestAgentImageIndex reads the archive `make image` wrote (the one the
// cluster test imports): its index.json names the agent image AGENT_IMAGE
// as an image index with exactly the platforms of the Makefile's
// IMAGE_PLATFORMS, each a one-platform image whose config says that
// platform and whose /otelcol-execsnoop is a static executable for its
// machine. Every blob read is checked against its digest (ociimage).
func TestAgentImageIndex(t *testing.T) {
	file, name := os.Getenv("AGENT_IMAGE_TAR"), os.Getenv("AGENT_IMAGE")
	if file == "" {
		t.Skip("AGENT_IMAGE_TAR is unset: `make k8s-test` builds the image (make image) and runs this test")
	}
	want := strings.Fields(os.Getenv("AGENT_IMAGE_PLATFORMS"))
	if name == "" || len(want) == 0 {
		t.Fatal("AGENT_IMAGE and AGENT_IMAGE_PLATFORMS must name the image and its platforms (make k8s-test sets them)")
	}
	a, err := ociimage.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	top, err := a.Index()
	if err != nil {
		t.Fatal(err)
	}
	// ctr images import names the image by this annotation.
	if len(top.Manifests) != 1 || top.Manifests[0].Annotations[ociimage.AnnotationRefName] != name ||
		top.Manifests[0].MediaType != ociimage.MediaTypeIndex {
		t.Fatalf("index.json: %+v, want one image index named %s", top.Manifests, name)
	}
	imgs, err := a.Images()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, img := range imgs {
		got = append(got, img.Platform.String())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the index has platforms %q, want exactly %q (IMAGE_PLATFORMS)", got, want)
	}
	for _, img := range imgs {
		p := img.Platform.String()
		t.Run(p, func(t *testing.T) {
			if c := img.Config; c.OS+"/"+c.Architecture != p || c.Variant != img.Platform.Variant {
				t.Errorf("the config says %s/%s (variant %q), the index %s", c.OS, c.Architecture, c.Variant, p)
			}
			if !slices.Equal(img.Config.Config.Entrypoint, []string{"/otelcol-execsnoop"}) || img.Config.Config.User != "0:0" {
				t.Errorf("entrypoint %q user %q, want /otelcol-execsnoop as 0:0", img.Config.Config.Entrypoint, img.Config.Config.User)
			}
			machine, ok := platformMachines[p]
			if !ok {
				t.Fatalf("no ELF machine known for %s: add it to platformMachines", p)
			}
			bin, err := a.File(img, "/otelcol-execsnoop")
			if err != nil {
				t.Fatal(err)
			}
			if err := elfcheck.Static(bin, machine); err != nil {
				t.Errorf("/otelcol-execsnoop %v: the image is FROM scratch and needs it static", err)
			}
			for _, other := range []string{"/etc/otelcol-execsnoop/config.yaml", "/etc/ssl/certs/ca-certificates.crt"} {
				if _, err := a.File(img, other); err != nil {
					t.Error(err)
				}
			}
			t.Logf("%s: manifest %s, %d layer(s), /otelcol-execsnoop %s, %d bytes", p, img.Descriptor.Digest, len(img.Manifest.Layers), machine, len(bin))
		})
	}
}
