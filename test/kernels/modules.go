package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The guest's kernel modules: the harness itself needs none, but the
// executable tests mount overlayfs, which Debian builds as a module. Each
// kernel's modules go into a small cpio of their own, appended to the
// shared initramfs at boot (the kernel unpacks concatenated archives); the
// guest's init loads every file in guestModuleDir.
const guestModuleDir = "lib/modules/ktest"

// guestModules are the modules a guest loads, as paths under the kernel
// package's lib/modules/VERSION/kernel/.
var guestModules = []string{"fs/overlayfs/overlay.ko"}

// writeModules writes dir/modules.cpio from the package extracted at
// extracted: each of guestModules, decompressed where Debian ships it
// compressed (.ko.xz from 6.12 on; the guest's init loads plain .ko).
func writeModules(extracted, dir string) error {
	// Debian 13's packages install under /usr (merged /usr), older ones /lib.
	trees, _ := filepath.Glob(filepath.Join(extracted, "lib", "modules", "*", "kernel"))
	usr, _ := filepath.Glob(filepath.Join(extracted, "usr", "lib", "modules", "*", "kernel"))
	trees = append(trees, usr...)
	if len(trees) != 1 {
		return fmt.Errorf("the kernel package holds %d [usr/]lib/modules/*/kernel trees, want 1", len(trees))
	}
	f, err := os.Create(filepath.Join(dir, "modules.cpio"))
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	w := &cpioWriter{w: bw}
	w.mkdirAll(guestModuleDir)
	for _, m := range guestModules {
		data, err := readModule(filepath.Join(trees[0], m))
		if err != nil {
			return err
		}
		w.file(filepath.Join(guestModuleDir, filepath.Base(m)), 0o644, data)
	}
	w.trailer()
	if w.err != nil {
		return w.err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// readModule returns the module at path, or its .xz or .zst form
// decompressed by the host's xz or zstd.
func readModule(path string) ([]byte, error) {
	if data, err := os.ReadFile(path); err == nil {
		return data, nil
	}
	for ext, tool := range map[string]string{".xz": "xz", ".zst": "zstd"} {
		if _, err := os.Stat(path + ext); err != nil {
			continue
		}
		out, err := exec.Command(tool, "-dc", path+ext).Output()
		if err != nil {
			return nil, fmt.Errorf("%s -dc %s%s: %v (install %s)", tool, path, ext, err, map[string]string{"xz": "xz-utils", "zstd": "zstd"}[tool])
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: not in the kernel package (nor .xz, .zst)", strings.TrimSuffix(path, ".ko")+".ko")
}

// initrdFor writes the initrd of kernel k: the shared initramfs followed by
// the kernel's modules.cpio and the extra cpios (the image's collector).
func initrdFor(k kernel, initramfs string, extra ...string) (string, error) {
	path := filepath.Join(filepath.Dir(k.Vmlinuz), "initrd.cpio")
	out, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer out.Close()
	for _, part := range append([]string{initramfs, k.Modules}, extra...) {
		data, err := os.ReadFile(part)
		if err != nil {
			return "", err
		}
		if _, err := out.Write(data); err != nil {
			return "", err
		}
	}
	return path, out.Close()
}
