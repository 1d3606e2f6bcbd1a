package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/exehash"
)

// identities hashes the files execs ran for --json and --otlp, as the
// receiver does. An exec whose hash is not known yet is held, and the
// events after it queue behind it so that the output keeps their order;
// the queue is released as hashes come, and at each drain every held
// event gets what is known by its deadline (its read time plus
// --hash-max-wait, by default the drain period), so one slow file delays
// the output by that much at most (the buffer then holds two periods).
type identities struct {
	hasher  *exehash.Hasher
	wait    time.Duration
	held    []heldEvent
	missing map[exehash.Reason]uint64
	hashed  int // records with a sha256
}

type heldEvent struct {
	ev       bpf.Event
	res      *exehash.Result // nil: no exec of a file
	deadline time.Time
	observed time.Time
	quiet    bool // not printed, only passed on in order (the process table's)
}

// emitFunc takes each event in read order once its identity is settled;
// quiet events are not printed or exported.
type emitFunc func(ev *bpf.Event, observed time.Time, id *exehash.Identity, quiet bool) error

func newIdentities(cfg *config) (*identities, error) {
	h, err := exehash.New(exehash.Options{MaxSize: int64(cfg.hashMaxSize), CacheEntries: exehash.DefaultCacheEntries})
	if err != nil {
		return nil, err
	}
	wait := cfg.hashMaxWait
	if wait == 0 {
		wait = cfg.opts.DrainPeriod
	}
	return &identities{hasher: h, wait: wait, missing: map[exehash.Reason]uint64{}}, nil
}

// add takes one event; emit is called, in order, for every event whose
// identity is settled. A quiet event is not hashed, only kept in order.
func (ids *identities) add(ev *bpf.Event, observed time.Time, quiet bool, emit emitFunc) error {
	var res *exehash.Result
	if f, ok := exehash.FileOf(ev); ok && !quiet {
		res = ids.hasher.Lookup(f)
	}
	if len(ids.held) == 0 && (res == nil || res.Ready()) {
		return ids.emit(ev, observed, res, quiet, emit)
	}
	held := heldEvent{ev: *ev, res: res, deadline: observed.Add(ids.wait), observed: observed, quiet: quiet}
	held.ev.Args = slices.Clone(ev.Args) // Read reuses the slice
	ids.held = append(ids.held, held)
	return ids.release(false, emit)
}

// release emits the held events from the front: those settled, and with
// wait, each after waiting until its deadline at most.
func (ids *identities) release(wait bool, emit emitFunc) error {
	now := time.Now()
	for len(ids.held) > 0 {
		h := &ids.held[0]
		if !wait && h.res != nil && !h.res.Ready() && now.Before(h.deadline) {
			return nil
		}
		if h.res != nil && wait {
			h.res.Wait(h.deadline)
		}
		err := ids.emit(&h.ev, h.observed, h.res, h.quiet, emit)
		ids.held[0] = heldEvent{}
		ids.held = ids.held[1:]
		if err != nil {
			return err
		}
	}
	ids.held = nil
	return nil
}

func (ids *identities) emit(ev *bpf.Event, observed time.Time, res *exehash.Result, quiet bool, emit emitFunc) error {
	if res == nil {
		return emit(ev, observed, nil, quiet)
	}
	id := res.Identity()
	if id.Missing != exehash.ReasonNone {
		ids.missing[id.Missing]++
	} else {
		ids.hashed++
	}
	return emit(ev, observed, &id, quiet)
}

// summary is the exit line: records hashed and why others were not.
func (ids *identities) summary() string {
	s := fmt.Sprintf("execsnoop: executables: %d records hashed (%d files read)", ids.hashed, ids.hasher.Stats().Hashed)
	var why []string
	for _, r := range exehash.Reasons {
		if n := ids.missing[r]; n > 0 {
			why = append(why, fmt.Sprintf("%d %s", n, r))
		}
	}
	if len(why) > 0 {
		s += ", no sha256: " + strings.Join(why, ", ")
	}
	return s
}
