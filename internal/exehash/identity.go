// Package exehash identifies the file an exec ran by its content: a SHA-256
// of the whole file, the GNU and Go build ids from its ELF notes and the
// OpenTelemetry eBPF profiler's file id (htlhash). Files are read in user
// space by a small pool of workers, off the event-reading path, once per
// distinct file: a bounded LRU cache keyed by the kernel's device, inode
// and change time remembers each result (and the lookups in flight).
package exehash

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
)

// Reason says why an identity has no SHA-256. The values are what
// execsnoop.executable.hash.missing carries.
type Reason uint8

const (
	ReasonNone Reason = iota
	// TooLarge: the file is over the size bound; the build ids and the
	// htlhash, which read only its head, tail and notes, are still given.
	TooLarge
	// Gone: the process and its file were gone before they could be read.
	Gone
	// Changed: the process is gone and its path now names another file
	// (or the same inode changed): hashing it would name the wrong content.
	Changed
	// Unreadable: the file could not be opened or read (permissions:
	// /proc/PID/exe of another user's process needs CAP_SYS_PTRACE).
	Unreadable
	// Timeout: the record could not wait longer for the hash (max_wait),
	// or the hashing queue was full.
	Timeout
	numReasons
)

// Reasons lists every reason in order, for counters and documentation.
var Reasons = []Reason{TooLarge, Gone, Changed, Unreadable, Timeout}

func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return ""
	case TooLarge:
		return "too_large"
	case Gone:
		return "gone"
	case Changed:
		return "changed"
	case Unreadable:
		return "unreadable"
	case Timeout:
		return "timeout"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Identity is what is known of one file's content. Strings are "" when
// the file has no such id (or was not read).
type Identity struct {
	SHA256  string // lowercase hex of the whole file
	GNU     string // NT_GNU_BUILD_ID, lowercase hex, as readelf -n prints it
	Go      string // the Go build id, as go tool buildid prints it
	HTLHash string // the profiler's file id: see HTLHash
	Missing Reason // why SHA256 is "" (ReasonNone when it is set)
}

// htlBlock is the size of the head and of the tail HTLHash reads.
const htlBlock = 4096

// HTLHash is process.executable.build_id.htlhash as the OpenTelemetry
// eBPF profiler computes it (libpf.FileIDFromExecutableReader in
// github.com/open-telemetry/opentelemetry-ebpf-profiler, libpf/fileid.go;
// the semantic conventions' profiles/mappings.md gives the same
// algorithm): SHA-256 over the first 4096 bytes, the last 4096 bytes
// (overlapping the head in a file under 8 KiB, not padded) and the file's
// length as a big-endian uint64; the id is the first 16 bytes of the
// digest, printed as 32 lowercase hex digits as the profiler prints file
// ids (Hash128.StringNoQuotes). The registry's example is upper case; the
// profiler, whose ids backends join on, writes lower case.
func HTLHash(r io.ReaderAt, size int64) (string, error) {
	h := sha256.New()
	head := min(size, htlBlock)
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, head)); err != nil {
		return "", err
	}
	tail := min(size, htlBlock)
	if _, err := io.Copy(h, io.NewSectionReader(r, size-tail, tail)); err != nil {
		return "", err
	}
	var length [8]byte
	binary.BigEndian.PutUint64(length[:], uint64(size))
	h.Write(length[:])
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// readBufSize is each worker's read buffer for the whole-file hash.
const readBufSize = 256 << 10

// identify reads the open file f of the given size. Over maxSize it gives
// everything but the SHA-256 (TooLarge). buf is the worker's buffer.
func identify(f *os.File, size, maxSize int64, sum hash.Hash, buf []byte) (Identity, error) {
	var id Identity
	var err error
	if id.HTLHash, err = HTLHash(f, size); err != nil {
		return Identity{}, err
	}
	id.GNU, id.Go = BuildIDs(io.NewSectionReader(f, 0, size))
	if size > maxSize {
		id.Missing = TooLarge
		return id, nil
	}
	sum.Reset()
	n, err := io.CopyBuffer(sum, io.NewSectionReader(f, 0, size), buf)
	if err != nil {
		return Identity{}, err
	}
	if n != size {
		return Identity{}, fmt.Errorf("read %d of %d bytes", n, size)
	}
	id.SHA256 = hex.EncodeToString(sum.Sum(nil))
	return id, nil
}
