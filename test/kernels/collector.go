package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"

	"github.com/otelexecsnoop/execsnoop/internal/elfcheck"
	"github.com/otelexecsnoop/execsnoop/internal/ociimage"
)

// The collector's path in the image (deploy/image/Containerfile) and in
// the guest (test/kernels/guest).
const (
	imageCollector = "/otelcol-execsnoop"
	guestCollector = "bin/otelcol-execsnoop"
)

// collectorCPIO takes the collector out of the image archive's variant for
// platform (os/arch; "" is the guest's, linux/GOARCH), checks that it is
// a static ELF program for the guest's machine, and writes it into a cpio
// of its own at path, which initrdFor appends for the guest that runs it:
// the image's binary, byte for byte, is what the guest proves.
func collectorCPIO(image, platform string, a arch, path string) (string, error) {
	if platform == "" {
		platform = a.Platform()
	}
	archive, err := ociimage.Open(image)
	if err != nil {
		return "", err
	}
	images, err := archive.Images()
	if err != nil {
		return "", err
	}
	var variants []string
	var img *ociimage.Image
	for i := range images {
		p := images[i].Platform.String()
		variants = append(variants, p)
		if p == platform {
			img = &images[i]
		}
	}
	if img == nil {
		return "", fmt.Errorf("%s has no %s image (it has %v)", image, platform, variants)
	}
	if got := img.Config.OS + "/" + img.Config.Architecture; got != platform {
		return "", fmt.Errorf("%s: the %s image's config says %s", image, platform, got)
	}
	bin, err := archive.File(*img, imageCollector)
	if err != nil {
		return "", err
	}
	what := fmt.Sprintf("%s in the %s image of %s", imageCollector, platform, image)
	if err := elfcheck.Static(bin, a.ELF); err != nil {
		var me *elfcheck.MachineError
		if errors.As(err, &me) {
			return "", fmt.Errorf("%s is an %s %s program; the %s guest runs %s ones", what, me.Got, me.Class, a.Debian, a.ELF)
		}
		return "", fmt.Errorf("%s %v (the guest has no libc)", what, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	w := &cpioWriter{w: bw}
	w.file(guestCollector, 0o755, bin)
	w.trailer()
	if w.err != nil {
		return "", w.err
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s (%s, %d KiB, %s)", what, a.ELF, len(bin)>>10, img.Descriptor.Digest), f.Close()
}
