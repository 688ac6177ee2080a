package swarm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/swarm/sched"
)

// eventQueue is the capacity of the driver's event channel. Senders (chunk
// workers, session readers, decoders) block when it is full, which slows
// them down; every sender also watches the run's context, so none blocks
// past the end of the run.
const eventQueue = 256

type evKind uint8

const (
	evJoined  evKind = iota + 1 // a session's hello arrived
	evHave                      // have indexes arrived
	evLeft                      // a session ended
	evChunk                     // a chunk request ended
	evDecoded                   // a stripe decode ended
)

type event struct {
	kind    evKind
	peer    identity.PeerID
	reqID   uint64
	chunk   int
	stripe  int
	n       int
	latency time.Duration
	err     error
	have    []byte     // evJoined: bitmap (nil: the peer has everything)
	tell    *haveQueue // evJoined of a peer with everything: our haves for it
	haves   []uint32   // evHave
	rebuilt []int      // evDecoded: chunks rebuilt
}

type reqKey struct {
	peer  identity.PeerID
	chunk int
}

type inflight struct {
	id     uint64
	cancel context.CancelFunc
}

type peerState struct {
	addr   netip.AddrPort
	cancel context.CancelFunc // of the running session; nil when none
	joined bool
	banned bool

	// Session slot (slots.go).
	running   bool          // a session goroutine runs: the peer holds a slot
	stopping  bool          // the session was cut short for a waiting peer
	produced  bool          // the running session brought a verified chunk
	offers    bool          // the running session's peer announced a chunk
	useful    time.Time     // running: slot granted or last verified chunk
	queued    bool          // waits in run.queue
	notBefore time.Time     // queued: no session before this
	strikes   int           // sessions without a verified chunk since the last with one
	backoff   time.Duration // pause before the next session after a failure
}

// run is one Run of a Download; only the loop goroutine touches its fields
// (workers get what they need as arguments and answer with events).
type run struct {
	d      *Download
	dl     *chunker.Download
	m      *chunker.Manifest
	s      *sched.Scheduler
	down   *bucket
	events chan event
	wg     sync.WaitGroup
	clog   *chunkLog

	unsent []sched.Action // Requests of the current batch that could not be sent

	peers      map[identity.PeerID]*peerState
	running    int                            // sessions holding a slot (at most cfg.MaxSessions)
	queue      []identity.PeerID              // peers waiting for a slot, in arrival order; each at most once
	slotsDirty bool                           // manageSessions must run
	slotNext   time.Time                      // manageSessions must run then (zero: not by itself)
	seeders    map[identity.PeerID]*haveQueue // joined peers with every chunk: told what we verify
	reqs       map[reqKey]inflight
	nextReq    uint64
	decoding   int
	schedDone  bool
	all        []byte         // a full bitmap, for hello-all peers
	counted    chunker.Bitmap // data chunks counted in Progress.Verified

	lastRecv int64
	lastTick time.Time
}

func newRun(d *Download, dl *chunker.Download) (*run, error) {
	m := dl.Manifest()
	lay := sched.Layout{Size: m.Size, ChunkSize: m.ChunkSize, K: m.DataShards, M: m.ParityShards}
	have := dl.Have()
	s, err := sched.New(lay, have, d.cfg.Sched, rand.New(rand.NewPCG(d.cfg.Seed, d.cfg.Seed^0x9e3779b97f4a7c15)))
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", d.id, err)
	}
	all := chunker.NewBitmap(m.NumChunks())
	counted := chunker.NewBitmap(m.NumChunks())
	var verified int64
	for i := range m.NumChunks() {
		all.Set(i)
		if have.Has(i) && !m.IsParity(i) {
			verified += int64(m.ChunkLen(i))
			counted.Set(i)
		}
	}
	d.size.Store(m.Size)
	d.verified.Store(verified)
	return &run{
		d: d, dl: dl, m: m, s: s,
		down:    newBucket(d.cfg.DownloadRate, 0),
		clog:    newChunkLog(d.cfg.Logger),
		events:  make(chan event, eventQueue),
		peers:   make(map[identity.PeerID]*peerState),
		reqs:    make(map[reqKey]inflight),
		seeders: make(map[identity.PeerID]*haveQueue),
		all:     all, counted: counted,
	}, nil
}

var errRunOver = errors.New("swarm: download run over")

func (r *run) loop(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer func() {
		cancel(errRunOver)
		r.wg.Wait()
		r.d.peers.Store(0)
		r.d.sessions.Store(0)
		r.d.sessionsWaiting.Store(0)
		r.report(time.Now())
	}()
	r.lastTick = time.Now()
	r.pickUp()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	ticker := time.NewTicker(r.d.cfg.ProgressEvery)
	defer ticker.Stop()
	var acts []sched.Action
	for {
		if now := time.Now(); r.slotsDirty || (!r.slotNext.IsZero() && !now.Before(r.slotNext)) {
			r.slotNext = r.manageSessions(ctx, now)
		}
		var deadline time.Time
		acts, deadline = r.s.Ready(acts[:0])
		for _, a := range acts {
			r.apply(ctx, a)
		}
		// The whole batch is carried out before the scheduler hears of
		// anything again: requests that could not be sent are reported now.
		for _, a := range r.unsent {
			r.s.RequestFailed(time.Now(), a.Peer, a.Chunk, sched.PeerGone)
		}
		r.unsent = r.unsent[:0]
		if len(acts) > 0 {
			continue // the batch may have produced more (e.g. unsent requests)
		}
		if r.schedDone && r.decoding == 0 {
			return r.finish(ctx)
		}
		if deadline.IsZero() || (!r.slotNext.IsZero() && r.slotNext.Before(deadline)) {
			deadline = r.slotNext
		}
		wait := time.Hour
		if !deadline.IsZero() {
			wait = max(time.Until(deadline), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case ev := <-r.events:
			if err := r.handle(ev); err != nil {
				return err
			}
		case <-r.d.wake:
			r.pickUp()
		case now := <-timer.C:
			r.s.Tick(now)
		case now := <-ticker.C:
			r.report(now)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// finish syncs the complete output and makes it able to serve every chunk.
func (r *run) finish(ctx context.Context) error {
	if !r.dl.Complete() {
		return fmt.Errorf("download %s: scheduler done but data chunks missing", r.d.id)
	}
	if err := r.dl.Sync(); err != nil {
		return fmt.Errorf("download %s: %w", r.d.id, err)
	}
	// Late results still in the queue may not have been counted.
	r.d.verified.Store(r.m.Size)
	r.d.done.Store(true)
	r.report(time.Now())
	if !r.d.cfg.SkipParity {
		// Re-encode the parity not fetched, so that this download (and the
		// item after a restart) serves every chunk.
		if err := r.dl.Finish(ctx); err != nil {
			return fmt.Errorf("download %s: %w", r.d.id, err)
		}
		if srv := r.d.cfg.Server; srv != nil {
			// Sessions opened before now saw the old bitmap; have updates
			// for the rebuilt parity are not worth it. New sessions see all.
			srv.Seed(r.d.id, DownloadSource(r.dl))
		}
	}
	r.d.cfg.Logger.Info("download complete", "content", r.d.id.String(), "size", r.m.Size)
	return nil
}

// report publishes progress and calls OnProgress.
func (r *run) report(now time.Time) {
	c := r.s.Counts()
	r.d.counts.Store(&c)
	recv := r.d.received.Load()
	if dt := now.Sub(r.lastTick).Seconds(); dt > 0.05 {
		inst := float64(recv-r.lastRecv) / dt
		old := math.Float64frombits(r.d.rate.Load())
		r.d.rate.Store(math.Float64bits(0.7*old + 0.3*inst))
		r.lastRecv, r.lastTick = recv, now
	}
	if f := r.d.cfg.OnProgress; f != nil {
		f(r.d.Progress())
	}
}

// pickUp queues peers added since the last call for a session slot
// (manageSessions starts their sessions).
func (r *run) pickUp() {
	now := time.Now()
	for _, p := range r.d.takePending() {
		if ps := r.peers[p.id]; ps != nil {
			ps.addr = p.addr // takes effect at the next session
			continue
		}
		ps := &peerState{addr: p.addr}
		r.peers[p.id] = ps
		r.enqueue(p.id, ps, now)
	}
	r.steer(now)
}

// send delivers an event to the loop unless the run is over.
func (r *run) send(ctx context.Context, ev event) {
	select {
	case r.events <- ev:
	case <-ctx.Done():
	}
}

// apply carries out one action. It must not call the scheduler: the loop
// reports what could not be done after the whole batch.
func (r *run) apply(ctx context.Context, a sched.Action) {
	pid := identity.PeerID(a.Peer)
	switch a.Kind {
	case sched.Request:
		ps := r.peers[pid]
		if ps == nil || !ps.joined || ps.banned {
			r.unsent = append(r.unsent, a)
			return
		}
		r.nextReq++
		id := r.nextReq
		rctx, cancel := context.WithCancel(ctx)
		r.reqs[reqKey{pid, a.Chunk}] = inflight{id: id, cancel: cancel}
		addr, chunk := ps.addr, a.Chunk
		r.wg.Go(func() {
			defer cancel()
			start := time.Now()
			err := r.fetchChunk(rctx, pid, addr, chunk)
			r.send(ctx, event{kind: evChunk, peer: pid, reqID: id, chunk: chunk, n: r.m.ChunkLen(chunk), latency: time.Since(start), err: err})
		})
	case sched.Cancel:
		k := reqKey{pid, a.Chunk}
		if req, ok := r.reqs[k]; ok {
			req.cancel()
			delete(r.reqs, k)
		}
	case sched.Penalise:
		// Informational: the bad chunk was logged when it arrived.
	case sched.Ban:
		r.d.cfg.Logger.Warn("peer banned for bad data", "peer", pid.Short(), "content", r.d.id.String())
		r.d.ban(pid)
		if ps := r.peers[pid]; ps != nil && !ps.banned {
			ps.banned = true
			r.slotsDirty = true // a queued peer leaves the queue
			if ps.cancel != nil {
				ps.cancel() // its slot is freed at evLeft
			}
			if ps.joined {
				ps.joined = false
				r.d.peers.Add(-1)
			}
		}
	case sched.DecodeStripe:
		r.decoding++
		s := a.Stripe
		r.wg.Go(func() {
			rebuilt, err := r.decode(s)
			r.send(ctx, event{kind: evDecoded, stripe: s, rebuilt: rebuilt, err: err})
		})
	case sched.Done:
		r.schedDone = true
	}
}

func (r *run) handle(ev event) error {
	now := time.Now()
	sid := sched.PeerID(ev.peer)
	ps := r.peers[ev.peer]
	switch ev.kind {
	case evJoined:
		if ps == nil || ps.banned || !ps.running || ps.stopping {
			return nil
		}
		ps.joined = true
		r.d.peers.Add(1)
		have := ev.have
		if have == nil {
			have = r.all
		}
		ps.offers = slices.ContainsFunc(have, func(b byte) bool { return b != 0 })
		r.slotsDirty = true // an empty hello shortens the session's idle limit
		r.s.PeerJoined(now, sid, have)
		if ev.tell != nil {
			r.seeders[ev.peer] = ev.tell
		}
	case evHave:
		if ps == nil || !ps.joined {
			return nil
		}
		for _, i := range ev.haves {
			r.s.Have(now, sid, int(i))
		}
		if len(ev.haves) > 0 && ps.running && !ps.offers {
			ps.offers = true
			r.slotsDirty = true
		}
	case evLeft:
		delete(r.seeders, ev.peer)
		if ps == nil {
			return nil
		}
		joined := ps.joined
		if ps.joined {
			ps.joined = false
			r.d.peers.Add(-1)
			r.s.PeerLeft(now, sid)
		}
		r.sessionEnded(ev.peer, ps, joined, now, ev.err)
	case evChunk:
		k := reqKey{ev.peer, ev.chunk}
		if req, ok := r.reqs[k]; ok && req.id == ev.reqID {
			delete(r.reqs, k)
		}
		switch {
		case ev.err == nil:
			if r.s.ChunkOK(now, sid, ev.chunk, ev.n, ev.latency) {
				if ps != nil && ps.running && !ps.stopping {
					ps.useful, ps.produced = now, true
				}
				r.d.fetched.Add(1)
				if _, full := r.seeders[ev.peer]; full {
					r.d.fetchedFull.Add(1)
				}
				r.count(ev.chunk)
				r.d.steer.broadcast()
				if srv := r.d.cfg.Server; srv != nil {
					srv.NotifyHave(r.d.id, ev.chunk)
				}
				r.tellSeeders(ev.chunk)
			}
		case errIsBadData(ev.err):
			r.d.bad.Add(1)
			r.clog.debug("bad chunk", "peer", ev.peer.Short(), "content", r.d.id.String(), "chunk", ev.chunk, "err", ev.err)
			r.s.ChunkBad(now, sid, ev.chunk)
		case errors.Is(ev.err, errLocal):
			return fmt.Errorf("download %s: %w", r.d.id, ev.err)
		case errors.Is(ev.err, context.Canceled):
			// Cancelled by us (Cancel, Ban or run over): the scheduler
			// already forgot the request.
		default:
			r.s.RequestFailed(now, sid, ev.chunk, reasonOf(ev.err))
		}
	case evDecoded:
		r.decoding--
		if ev.err != nil {
			return fmt.Errorf("download %s: %w", r.d.id, ev.err)
		}
		r.d.steer.broadcast()
		for _, i := range ev.rebuilt {
			r.count(i)
			if srv := r.d.cfg.Server; srv != nil {
				srv.NotifyHave(r.d.id, i)
			}
			r.tellSeeders(i)
		}
	}
	return nil
}

// tellSeeders announces chunk i on the sessions with peers that hold every
// chunk: a super-seeding server learns that its first copy arrived and
// where its chunks went (superseed.go). The queues are bounded: each chunk
// is verified once per run.
func (r *run) tellSeeders(i int) {
	for _, q := range r.seeders {
		q.queueHave(uint32(i))
	}
}

// count adds data chunk i to the verified bytes, once.
func (r *run) count(i int) {
	if r.m.IsParity(i) || r.counted.Has(i) {
		return
	}
	r.counted.Set(i)
	r.d.verified.Add(int64(r.m.ChunkLen(i)))
}

// reasonOf maps a failed request's error to the scheduler's reason.
func reasonOf(err error) sched.Reason {
	var se *StatusError
	switch {
	case errors.As(err, &se) && se.Status == StatusBusy:
		return sched.Busy
	case errors.As(err, &se) && se.Status == StatusElsewhere:
		return sched.Elsewhere
	case errors.As(err, &se):
		return sched.NotFound
	}
	// A stream that could not be opened or broke off counts as a timeout,
	// not PeerGone: if the connection is really gone the session ends too
	// and reports PeerLeft; if not, the peer stays usable.
	return sched.Timeout
}

var (
	errDial  = errors.New("swarm: cannot open stream")
	errLocal = errors.New("swarm: local storage failed")
)

// fetchChunk fetches chunk i from peer and writes it to the download (which
// verifies it). Bad bytes wrap chunker.ErrChunkMismatch or ErrProtocol.
func (r *run) fetchChunk(ctx context.Context, peer identity.PeerID, addr netip.AddrPort, i int) error {
	st, stop, err := openRequest(ctx, r.d.dialer, peer, addr, Request{Kind: KindChunk, ID: r.d.id, Index: uint32(i)})
	if err != nil {
		if ctx.Err() != nil {
			return context.Canceled
		}
		return fmt.Errorf("%w: %w", errDial, err)
	}
	defer stop()
	n := r.m.ChunkLen(i)
	if _, err := readResponse(st, n, n); err != nil {
		reset(st, CodeCancelled)
		return r.ctxErr(ctx, err)
	}
	bp := getBuf(n)
	defer putBuf(bp)
	buf := *bp
	piece := n // unlimited: one read per chunk
	if r.limited() {
		piece = sendPiece
	}
	defer r.urgentStart(i)()
	for off := 0; off < n; {
		end := min(off+piece, n)
		if err := r.waitRate(ctx, i, end-off); err != nil {
			reset(st, CodeCancelled)
			return context.Canceled
		}
		if err := readFull(st, buf[off:end]); err != nil {
			reset(st, CodeCancelled)
			return r.ctxErr(ctx, fmt.Errorf("reading chunk %d: %w", i, err))
		}
		r.d.received.Add(int64(end - off))
		off = end
	}
	// The server's FIN follows the data: reading it lets both ends retire
	// the stream without STOP_SENDING frames. Extra bytes are a violation.
	if n, _ := st.Read(make([]byte, 1)); n > 0 {
		reset(st, CodeProtocol)
		return fmt.Errorf("chunk %d from %s: %w: bytes after the chunk", i, peer.Short(), ErrProtocol)
	}
	if err := r.dl.WriteChunk(i, buf); err != nil {
		switch {
		case errors.Is(err, chunker.ErrChunkMismatch):
			return fmt.Errorf("chunk %d from %s: %w", i, peer.Short(), err)
		case errors.Is(err, chunker.ErrClosed):
			return context.Canceled
		}
		// Not the peer's fault: the disk is full or failing. Retrying
		// elsewhere cannot help, so the download stops with the error.
		return fmt.Errorf("%w: writing chunk %d: %w", errLocal, i, err)
	}
	return nil
}

func (r *run) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Canceled
	}
	return err
}

// decode rebuilds stripe s and returns the chunks it added.
func (r *run) decode(s int) ([]int, error) {
	start, n := r.m.StripeStart(s), r.m.StripeLen(s)
	var missing []int
	for i := start; i < start+n; i++ {
		if !r.dl.HasChunk(i) {
			missing = append(missing, i)
		}
	}
	if err := r.dl.Decode(s); err != nil {
		return nil, err
	}
	return missing, nil
}

func (r *run) sessionOnce(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (joined bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, stop, err := openRequest(ctx, r.d.dialer, peer, addr, Request{Kind: KindSession, ID: r.d.id})
	if err != nil {
		return false, err
	}
	defer stop()
	defer reset(st, CodeClosing)
	n := r.m.NumChunks()
	// The exchange of hellos has a short deadline; after it, a session
	// may stay silent for as long as the connection lives.
	if err := st.SetDeadline(time.Now().Add(DefaultHelloTimeout)); err != nil {
		return false, err
	}
	if _, err := st.Write(AppendMessage(nil, helloFor(n, r.dl.HasChunk))); err != nil {
		return false, fmt.Errorf("sending hello: %w", err)
	}
	if _, err := readResponse(st, 0, 0); err != nil {
		return false, err
	}
	mr := msgReader{r: st, chunks: n}
	m, err := mr.next()
	if err == nil {
		err = checkHello(m, n)
	}
	if err != nil {
		return false, fmt.Errorf("reading hello: %w", err)
	}
	if err := st.SetDeadline(time.Time{}); err != nil {
		return false, err
	}
	ev := event{kind: evJoined, peer: peer}
	if !m.All {
		ev.have = append([]byte(nil), m.Bitmap...)
	} else {
		// A peer with every chunk hears what we verify (it may be
		// super-seeding); the writer ends with the session.
		q := newHaveQueue()
		ev.tell = &q
		wctx, wcancel := context.WithCancel(ctx)
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			q.sendHaves(wctx, st, DefaultStallTimeout)
		}()
		defer func() {
			wcancel()
			st.CancelWrite(CodeClosing)
			<-wrote
		}()
	}
	r.send(ctx, ev)
	for {
		m, err := mr.next()
		if err == nil {
			err = checkHave(m, n)
		}
		if err != nil {
			return true, fmt.Errorf("reading have: %w", err)
		}
		r.send(ctx, event{kind: evHave, peer: peer, haves: append([]uint32(nil), m.Indexes...)})
	}
}
