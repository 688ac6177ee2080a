package swarm

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/swarm/sched"
)

// steering is what readers and the per-download controls (pause, rate,
// on-demand) ask of a running download. Readers and API calls change it
// under mu and wake the run loop, which hands it to the scheduler
// (run.steer); chunk and run events wake the readers through changed.
type steering struct {
	mu       sync.Mutex
	readers  map[*Reader]struct{}
	nextID   uint64
	onDemand bool          // fetch only what readers focus (sched.FetchFocused)
	paused   bool          // fetch nothing new (sched.FetchNone)
	dirty    bool          // the run must hand focus and mode to the scheduler
	ended    bool          // Run returned
	runErr   error         // what Run returned
	changed  chan struct{} // closed (and replaced) when chunks or the run change

	limit atomic.Pointer[bucket] // this download's own rate cap; nil: none

	// Bucket priority: pieces of chunks in urgent stripes pass first.
	gateMu  sync.Mutex
	urgentN int           // urgent chunk fetches reading now
	idle    chan struct{} // closed when urgentN drops to 0
	urgent  atomic.Pointer[[]bool]
}

// watch returns a channel closed at the next change.
func (st *steering) watch() <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.watchLocked()
}

func (st *steering) watchLocked() <-chan struct{} {
	if st.changed == nil {
		st.changed = make(chan struct{})
	}
	return st.changed
}

// broadcast wakes every reader waiting for a change.
func (st *steering) broadcast() {
	st.mu.Lock()
	if st.changed != nil {
		close(st.changed)
		st.changed = nil
	}
	st.mu.Unlock()
}

// end records that Run returned with err and wakes the readers.
func (st *steering) end(err error) {
	st.mu.Lock()
	st.ended, st.runErr = true, err
	st.mu.Unlock()
	st.broadcast()
}

// SetOnDemand makes the download fetch only the chunks its readers need
// (and their read-ahead) instead of everything. Default off.
func (d *Download) SetOnDemand(on bool) { d.steerSet(func(st *steering) { st.onDemand = on }) }

// Pause stops new chunk requests (requests in flight end as usual; readers
// wait). Resume undoes it.
func (d *Download) Pause() { d.steerSet(func(st *steering) { st.paused = true }) }

// Resume lets a paused download fetch again.
func (d *Download) Resume() { d.steerSet(func(st *steering) { st.paused = false }) }

// Paused reports whether the download is paused.
func (d *Download) Paused() bool {
	d.steer.mu.Lock()
	defer d.steer.mu.Unlock()
	return d.steer.paused
}

// SetRateLimit caps this download's chunk bytes per second (0: no cap of its
// own; Config.DownloadRate still applies). It takes effect at once.
func (d *Download) SetRateLimit(bytesPerSec int64) {
	d.steer.limit.Store(newBucket(bytesPerSec, 0))
}

// RateLimit returns the cap set by SetRateLimit (0: none).
func (d *Download) RateLimit() int64 {
	if b := d.steer.limit.Load(); b != nil {
		return int64(b.rate)
	}
	return 0
}

func (d *Download) steerSet(f func(*steering)) {
	d.steer.mu.Lock()
	f(&d.steer)
	d.steer.dirty = true
	d.steer.mu.Unlock()
	d.signal()
}

// Manifest waits until the download knows its manifest (it fetches it from
// the first peer that answers) and returns it, or ctx's cause, or the error
// Run ended with.
func (d *Download) Manifest(ctx context.Context) (*chunker.Manifest, error) {
	for {
		ch := d.steer.watch()
		if dl := d.Chunker(); dl != nil {
			return dl.Manifest(), nil
		}
		if err := d.runEnded(); err != nil {
			return nil, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// runEnded returns nil while Run has not returned, else why it returned
// (ErrRunEnded for a nil return).
func (d *Download) runEnded() error {
	d.steer.mu.Lock()
	defer d.steer.mu.Unlock()
	if !d.steer.ended {
		return nil
	}
	if d.steer.runErr != nil {
		return d.steer.runErr
	}
	return ErrRunEnded
}

// ErrRunEnded: a reader waits for a chunk of a download whose Run returned
// without it (the download was stopped).
var ErrRunEnded = errors.New("swarm: download stopped")

// steer hands the readers' focus and the mode to the scheduler, if they
// changed. Called by the run loop.
func (r *run) steer(now time.Time) {
	st := &r.d.steer
	st.mu.Lock()
	if !st.dirty {
		st.mu.Unlock()
		return
	}
	st.dirty = false
	mode := sched.FetchAll
	switch {
	case st.paused:
		mode = sched.FetchNone
	case st.onDemand:
		mode = sched.FetchFocused
	}
	list, urgent := st.focusList()
	st.mu.Unlock()

	mark := make([]bool, r.m.NumStripes())
	for _, w := range list {
		if s, _ := r.m.StripeOf(w.First); s >= 0 && s < len(mark) {
			mark[s] = true
		}
	}
	st.urgent.Store(&mark)
	r.s.SetMode(now, mode)
	r.s.Focus(now, list, urgent)
}

// focusList merges the readers' windows, most urgent first: the stripes
// blocked readers wait for, then every reader's current stripe, then the
// read-ahead, one stripe of each reader in turn. The caller holds mu.
func (st *steering) focusList() (list []sched.Want, urgent int) {
	var ws [][]sched.Want
	for rd := range st.readers {
		if len(rd.window) == 0 {
			continue
		}
		if rd.blocked {
			list = append(list, rd.window[0])
			urgent++
		}
		ws = append(ws, rd.window)
	}
	for rank := 0; len(list) < sched.MaxFocus; rank++ {
		more := false
		for _, w := range ws {
			if rank < len(w) {
				list = append(list, w[rank])
				more = true
			}
		}
		if !more {
			break
		}
	}
	return list, urgent
}

// waitRate lets n more bytes of chunk i pass the rate caps. When a cap
// applies, pieces of chunks outside the readers' stripes wait while a
// reader's chunk is being read, so that a reader's bytes come first.
func (r *run) waitRate(ctx context.Context, i, n int) error {
	if r.down == nil && r.d.steer.limit.Load() == nil {
		return nil
	}
	if err := r.d.steer.yield(ctx, r.urgentChunk(i)); err != nil {
		return err
	}
	if err := r.down.wait(ctx, n); err != nil {
		return err
	}
	return r.d.steer.limit.Load().wait(ctx, n)
}

func (r *run) urgentChunk(i int) bool {
	mark := r.d.steer.urgent.Load()
	s, _ := r.m.StripeOf(i)
	return mark != nil && s < len(*mark) && (*mark)[s]
}

// limited reports whether a rate cap applies (chunks are then read in
// pieces).
func (r *run) limited() bool { return r.down != nil || r.d.steer.limit.Load() != nil }

// yield: an urgent caller registers until its chunk ends (see done), a
// normal one waits while urgent fetches are reading.
func (st *steering) yield(ctx context.Context, urgent bool) error {
	for {
		st.gateMu.Lock()
		if urgent || st.urgentN == 0 {
			st.gateMu.Unlock()
			return nil
		}
		if st.idle == nil {
			st.idle = make(chan struct{})
		}
		ch := st.idle
		st.gateMu.Unlock()
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond): // an urgent fetch may stall; do not starve for long
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// urgentStart marks a reader's chunk fetch as reading; the returned func
// ends it.
func (r *run) urgentStart(i int) func() {
	if !r.limited() || !r.urgentChunk(i) {
		return func() {}
	}
	st := &r.d.steer
	st.gateMu.Lock()
	st.urgentN++
	st.gateMu.Unlock()
	return func() {
		st.gateMu.Lock()
		st.urgentN--
		if st.urgentN == 0 && st.idle != nil {
			close(st.idle)
			st.idle = nil
		}
		st.gateMu.Unlock()
	}
}
