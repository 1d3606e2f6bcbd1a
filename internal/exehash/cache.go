package exehash

import (
	"container/list"
	"time"
)

// Key names one version of one file: what the kernel reports at the exec.
// Any write to the file changes its change time, so a new version (or a
// new file that reuses the inode) is a new key.
type Key struct {
	Dev     uint64 // st_dev, as stat(2) reports it
	Inode   uint64
	Changed int64 // ctime, nanoseconds since the epoch
}

// lru is a bounded map from keys to results, least recently used first
// out. Not safe for concurrent use: Hasher guards it.
type lru struct {
	max     int
	order   *list.List // of *entry, most recent at the front
	entries map[Key]*list.Element
}

type entry struct {
	key Key
	res *Result
}

func newLRU(max int) *lru {
	// Not sized for max: that took 320 KiB at start for files most hosts
	// never run; the map grows with the files seen.
	return &lru{max: max, order: list.New(), entries: make(map[Key]*list.Element)}
}

func (c *lru) get(k Key) (*Result, bool) {
	el, ok := c.entries[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*entry).res, true
}

// add stores res under k, evicting the least recently used entry when full.
func (c *lru) add(k Key, res *Result) {
	if el, ok := c.entries[k]; ok {
		el.Value.(*entry).res = res
		c.order.MoveToFront(el)
		return
	}
	if c.order.Len() >= c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*entry).key)
	}
	c.entries[k] = c.order.PushFront(&entry{key: k, res: res})
}

// remove forgets k if it still maps to res.
func (c *lru) remove(k Key, res *Result) {
	if el, ok := c.entries[k]; ok && el.Value.(*entry).res == res {
		c.order.Remove(el)
		delete(c.entries, k)
	}
}

func (c *lru) len() int { return c.order.Len() }

// Result is one file's identity, ready once Done is closed.
type Result struct {
	done chan struct{}
	id   Identity
}

// Done is closed when the identity is known.
func (r *Result) Done() <-chan struct{} { return r.done }

// Ready reports, without waiting, whether the identity is known.
func (r *Result) Ready() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Identity returns the identity if it is known, else one missing for
// Timeout: what a record that can wait no longer carries.
func (r *Result) Identity() Identity {
	if r.Ready() {
		return r.id
	}
	return Identity{Missing: Timeout}
}

// Wait waits for the identity until deadline at most (see Identity).
func (r *Result) Wait(deadline time.Time) Identity {
	if !r.Ready() {
		d := time.Until(deadline)
		if d <= 0 {
			return r.Identity()
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-r.done:
		case <-t.C:
		}
	}
	return r.Identity()
}

func resolved(id Identity) *Result {
	r := &Result{done: make(chan struct{}), id: id}
	close(r.done)
	return r
}

// Unresolved returns a Result that never resolves: a file whose hashing
// never ends, for tests of the waiting side.
func Unresolved() *Result { return &Result{done: make(chan struct{})} }
