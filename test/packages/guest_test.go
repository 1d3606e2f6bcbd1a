//go:build linux

package packages

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Debian 12 guest of TestInVM: its image, built once, and its boots.

type guestFiles struct{ rootfs, kernel, initrd string }

// guestImage returns the cached guest in dir, building it with
// mkrootfs.sh (mmdebstrap) when it is missing.
func guestImage(t *testing.T, dir string) guestFiles {
	g := guestFiles{filepath.Join(dir, "rootfs.ext4"), filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")}
	if _, err := os.Stat(g.rootfs); err == nil {
		t.Logf("guest: cached in %s", dir)
		return g
	}
	t.Logf("guest: building %s with mmdebstrap (cold: a few minutes)", dir)
	start := time.Now()
	cmd := exec.Command("./mkrootfs.sh", dir)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mkrootfs.sh: %v", err)
	}
	t.Logf("guest: built in %s", time.Since(start).Round(time.Second))
	return g
}

// bootGuest runs the guest under QEMU (TCG) until it powers off, printing
// its serial console as it goes, and returns the console output. QEMU is
// killed when the deadline passes, when the test ends and when this
// process dies (Pdeathsig).
func bootGuest(t *testing.T, g guestFiles, disk string, deadline time.Duration) string {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64",
		"-accel", "tcg,thread=multi", "-machine", "q35", "-cpu", "max", "-smp", "2", "-m", "2048",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nodefaults",
		"-kernel", g.kernel, "-initrd", g.initrd,
		"-append", "root=/dev/vda rw console=ttyS0 quiet panic=-1 systemd.show_status=0",
		// cache=unsafe: the guest's fsyncs (dpkg makes many) return without
		// waiting for the host's disk; the root disk is a throw-away
		// snapshot and the test disk is read back only after QEMU exits.
		"-drive", "file="+g.rootfs+",format=raw,if=virtio,snapshot=on,cache=unsafe",
		"-drive", "file="+disk+",format=raw,if=virtio,cache=unsafe",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("qemu-system-x86_64: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	var serial strings.Builder
	start := time.Now()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		serial.WriteString(line + "\n")
		fmt.Printf("[vm %4.0fs] %s\n", time.Since(start).Seconds(), line)
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the guest did not power off within %s; killed", deadline)
	}
	if err != nil {
		t.Fatalf("qemu: %v", err)
	}
	return serial.String()
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
}
