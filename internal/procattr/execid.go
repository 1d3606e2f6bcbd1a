package procattr

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"strings"
	"sync"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

// Identity across pid reuse and agent restarts.
const (
	ExecID       = "execsnoop.exec.id"        // one process image on one host: ExecIDOf
	ParentExecID = "execsnoop.parent.exec.id" // the image the real parent runs at the exec
)

// BootIDPath holds the kernel's random id of this boot, the same for every
// reader until the host reboots.
const BootIDPath = "/proc/sys/kernel/random/boot_id"

// bootID is read once; it cannot change while the process runs.
var bootID = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(BootIDPath)
	return strings.TrimSpace(string(b)), err
})

// BootID is the host's boot id, for the start-up check of the receiver and
// the CLI: without it exec ids are unique on the host within one boot only.
func BootID() (string, error) { return bootID() }

// ExecIDOf formats an image's execsnoop.exec.id: 32 hex digits, the first
// 128 bits of SHA-256 over the boot id (as BootIDPath has it, 36 bytes of
// text), then the tgid (4 bytes), the start in nanoseconds since boot (8)
// and the exec counter (8), little-endian. Every input is the kernel's, so
// any reader on the host at any time (a restarted agent, a script with
// /proc/PID/stat's start time) computes the same id.
func ExecIDOf(img bpf.Image) string {
	id, _ := bootID()
	var in [36 + 4 + 8 + 8]byte
	n := copy(in[:36], id)
	buf := binary.LittleEndian.AppendUint32(in[:n], img.PID)
	buf = binary.LittleEndian.AppendUint64(buf, img.StartBootNs)
	buf = binary.LittleEndian.AppendUint64(buf, img.ExecSeq)
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:16])
}

// idAttributes sends the image's id, and for an exec its parent's.
func idAttributes(ev *bpf.Event, s Sink) {
	s.Str(ExecID, ExecIDOf(ev.Image))
	if ev.Kind == bpf.KindExec && ev.PPID != 0 {
		s.Str(ParentExecID, ExecIDOf(ev.ParentImage))
	}
}
