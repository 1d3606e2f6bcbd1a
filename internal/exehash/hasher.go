package exehash

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

// The defaults and bounds of Options, one place for each.
const (
	DefaultMaxSize      = 64 << 20
	MaxSize             = 1 << 40 // the largest size bound a setting may ask for
	DefaultCacheEntries = 4096
	MaxCacheEntries     = 1 << 20
	// Workers hash files concurrently; the files of a burst of execs are
	// mostly the same few, which the cache answers.
	Workers = 2
	// queueSize bounds the lookups waiting for a worker; past it a lookup
	// is answered Timeout at once rather than blocking the reader.
	queueSize = 4096
)

// Options configure New.
type Options struct {
	MaxSize      int64 // bytes; larger files get no SHA-256 (TooLarge)
	CacheEntries int   // distinct files remembered
	// Proc is where procfs is mounted ("/proc" when empty).
	Proc string
}

// File is the file an exec ran, as the kernel described it.
type File struct {
	PID uint32
	// PPID is the parent, which in a container is usually of the same
	// container: its /proc/PPID/root sees the path as the process did.
	PPID uint32
	Path string // as the process saw it; "" or cut: not usable
	// NoPath: the path names no file to open (memfd, deleted, cut).
	NoPath bool
	Key    Key
}

// Stats count the hasher's work since New.
type Stats struct {
	Lookups   uint64 // calls of Lookup
	Hits      uint64 // answered from the cache (or a lookup in flight)
	Hashed    uint64 // files read and hashed
	QueueFull uint64 // lookups answered Timeout because the queue was full
}

// Hasher hashes files on a pool of workers and caches the results.
type Hasher struct {
	opts  Options
	jobs  chan job
	wg    sync.WaitGroup
	close sync.Once

	mu    sync.Mutex
	cache *lru

	lookups, hits, hashed, queueFull atomic.Uint64
}

type job struct {
	file File
	res  *Result
}

// New starts the workers; Close stops them.
func New(opts Options) (*Hasher, error) {
	if opts.MaxSize < 0 {
		return nil, fmt.Errorf("exehash: max size %d is negative", opts.MaxSize)
	}
	if opts.CacheEntries < 1 || opts.CacheEntries > MaxCacheEntries {
		return nil, fmt.Errorf("exehash: cache entries %d is not between 1 and %d", opts.CacheEntries, MaxCacheEntries)
	}
	if opts.Proc == "" {
		opts.Proc = "/proc"
	}
	h := &Hasher{opts: opts, jobs: make(chan job, queueSize), cache: newLRU(opts.CacheEntries)}
	for range Workers {
		h.wg.Add(1)
		go h.work()
	}
	return h, nil
}

// Lookup returns f's identity, from the cache or to come: it never blocks
// and makes no system call.
func (h *Hasher) Lookup(f File) *Result {
	h.lookups.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if res, ok := h.cache.get(f.Key); ok {
		h.hits.Add(1)
		return res
	}
	res := &Result{done: make(chan struct{})}
	select {
	case h.jobs <- job{file: f, res: res}:
	default:
		h.queueFull.Add(1)
		return resolved(Identity{Missing: Timeout})
	}
	h.cache.add(f.Key, res)
	return res
}

// Stats returns the counters.
func (h *Hasher) Stats() Stats {
	return Stats{Lookups: h.lookups.Load(), Hits: h.hits.Load(), Hashed: h.hashed.Load(), QueueFull: h.queueFull.Load()}
}

// Close stops the workers after the queued lookups; every Result is then
// resolved. Lookup must not be called after Close.
func (h *Hasher) Close() {
	h.close.Do(func() { close(h.jobs) })
	h.wg.Wait()
}

func (h *Hasher) work() {
	defer h.wg.Done()
	sum := sha256.New()
	buf := make([]byte, readBufSize)
	for j := range h.jobs {
		id := h.hash(j.file, sum, buf)
		j.res.id = id
		if id.Missing != ReasonNone && id.Missing != TooLarge {
			// Gone, changed, unreadable: a property of this exec, not of
			// the file; a later exec of it may read it.
			h.mu.Lock()
			h.cache.remove(j.file.Key, j.res)
			h.mu.Unlock()
		}
		close(j.res.done)
	}
}

// hash reads the file through /proc/PID/exe while the process lives, else
// through its path while that still names the same file.
func (h *Hasher) hash(f File, sum hash.Hash, buf []byte) Identity {
	file, reason := h.open(f)
	if file == nil {
		return Identity{Missing: reason}
	}
	defer file.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(file.Fd()), &st); err != nil {
		return Identity{Missing: Unreadable}
	}
	id, err := identify(file, st.Size, h.opts.MaxSize, sum, buf)
	if err != nil {
		return Identity{Missing: Unreadable}
	}
	h.hashed.Add(1)
	return id
}

// open finds the file the kernel ran, or says why it cannot.
func (h *Hasher) open(f File) (*os.File, Reason) {
	procErr := error(nil)
	exe := h.opts.Proc + "/" + strconv.FormatUint(uint64(f.PID), 10) + "/exe"
	if file, err := os.Open(exe); err == nil {
		// Dev and inode only: an unlink or chmod since the exec changed
		// the ctime, and a file being run cannot be written (ETXTBSY).
		if matches(file, f.Key, false) {
			return file, ReasonNone
		}
		// The pid runs another image now (a later exec, or reused).
		file.Close()
		procErr = os.ErrNotExist
	} else {
		procErr = err
	}
	denied := errors.Is(procErr, os.ErrPermission)
	if f.NoPath || f.Path == "" || !strings.HasPrefix(f.Path, "/") {
		if denied {
			return nil, Unreadable
		}
		return nil, Gone
	}
	// Through the parent's root first: a container's file is under its
	// own root, and the host may have another file at the same path.
	// Either way the key decides whether it is the file that ran.
	reason := Gone
	if f.PPID != 0 {
		root := h.opts.Proc + "/" + strconv.FormatUint(uint64(f.PPID), 10) + "/root"
		file, r := openMatching(root+f.Path, f.Key, denied)
		if file != nil {
			return file, ReasonNone
		}
		reason = r
	}
	file, r := openMatching(f.Path, f.Key, denied)
	if file != nil {
		return file, ReasonNone
	}
	// The most telling reason: a file that changed, or could not be read,
	// says more than one missing from the other view.
	if r != Gone || reason == Gone {
		reason = r
	}
	return nil, reason
}

// openMatching opens path if it is still the version of the file key
// names; denied: reading /proc/PID/exe was refused.
func openMatching(path string, k Key, denied bool) (*os.File, Reason) {
	file, err := os.Open(path)
	switch {
	case errors.Is(err, os.ErrPermission) || denied && errors.Is(err, os.ErrNotExist):
		return nil, Unreadable
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR):
		return nil, Gone
	case err != nil:
		return nil, Unreadable
	}
	if !matches(file, k, true) {
		file.Close()
		return nil, Changed
	}
	return file, ReasonNone
}

// matches reports whether the open file is the one the kernel ran (and,
// with ctime, the same version of it).
func matches(file *os.File, k Key, ctime bool) bool {
	var st unix.Stat_t
	if err := unix.Fstat(int(file.Fd()), &st); err != nil {
		return false
	}
	got := KeyOf(&st)
	return got.Dev == k.Dev && got.Inode == k.Inode && (!ctime || got.Changed == k.Changed)
}

// KeyOf is the key of a file user space stat(2)s.
func KeyOf(st *unix.Stat_t) Key {
	return Key{Dev: uint64(st.Dev), Inode: st.Ino, Changed: time.Unix(st.Ctim.Unix()).UnixNano()}
}

// FileOf is the file a successful exec ran; ok is false for other events.
func FileOf(ev *bpf.Event) (f File, ok bool) {
	x := &ev.Executable
	if ev.Kind != bpf.KindExec || !x.Valid {
		return File{}, false
	}
	return File{
		PID:    ev.PID,
		PPID:   ev.PPID,
		Path:   x.Path,
		NoPath: x.Memfd || x.Deleted || x.PathCut,
		Key:    Key{Dev: x.StatDev(), Inode: x.Inode, Changed: x.Changed.UnixNano()},
	}, true
}
