package sched

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Scheduler is the download scheduler for one piece of content: a state
// machine that takes events (the methods named after them) and returns
// actions through Ready. It does no I/O, starts no goroutines and reads no
// clock: every event carries the driver's now.
//
// A Scheduler is not safe for concurrent use; one driver goroutine owns it.
type Scheduler struct {
	cfg Config
	lay Layout
	rng *rand.Rand

	nchunks, nstripes int
	ndata             int // data chunks

	// Per chunk.
	verified bitset   // verified chunks (resume bitmap included)
	busy     bitset   // chunks with at least one outstanding request
	avail    []uint16 // live, unbanned peers that announced the chunk
	cTie     []uint16 // random tie-break among equally announced chunks, fixed at construction
	// live peers that deferred the chunk (elsewhere.go)
	ndeferred []uint16
	inflight  []uint8 // outstanding requests for the chunk
	reqHead   []int32 // first request for the chunk (-1: none)

	// Per stripe.
	sVerified []int32     // verified chunks
	sInflight []int32     // unverified chunks with an outstanding request
	sOldest   []time.Time // send time of the stripe's oldest request (see stale)
	sStale    bitset      // sOldest must be recomputed (its request left)
	sComplete bitset      // at least d_s chunks verified
	sKey      []uint64    // rarity key: lower is rarer (see stripeKey)
	sTie      []uint16    // random tie-break, fixed at construction
	order     []int32     // incomplete stripes by (sKey, index)
	dirty     bool        // sKey changed without reordering: sort before use
	needTotal int         // sum over stripes of need(s)
	complete  int         // completed stripes

	// Requests: a slab with a free list, and a min-heap by deadline.
	deferrals []deferral // ElsewhereWait queue, in order of until
	reqs      []request
	free      []int32
	heap      []int32
	nreqs     int
	inBytes   int64

	// Peers.
	peers  []*peer // live and unbanned
	byID   map[PeerID]*peer
	banned map[PeerID]struct{}
	rr     int // round-robin start for fill

	// Focus (focus.go): stripes readers need, most urgent first.
	mode    Mode
	focus   []focusEntry
	focused bitset // the stripes in focus
	nurgent int    // focus[:nurgent] is what blocked readers wait for

	workGen      uint64 // bumped when work may have appeared for idle peers
	verifiedData int64
	now          time.Time // latest now seen
	done         bool

	cnt     Counts // tallies (progress.go)
	out     []Action
	scratch []uint16
	egBuf   []egStripe // endgame scan buffer
}

// request is one outstanding request.
type request struct {
	peer     *peer
	chunk    int32
	next     int32 // next request for the same chunk (-1: none)
	heapIdx  int32
	size     int32
	sent     time.Time
	deadline time.Time
	due      int64 // deadline as Unix nanoseconds, for cheap heap comparisons
}

// ErrNoRand reports a nil random source.
var ErrNoRand = errors.New("sched: nil rand")

// New returns a scheduler for content of layout l. verified, if not nil, is
// the resume bitmap (bit c%8 of byte c/8 set: chunk c is already verified and
// stored). rng seeds every random choice; the scheduler owns it from now on.
//
// Completed stripes found in verified yield DecodeStripe actions (and Done if
// nothing is missing); call Ready after New.
func New(l Layout, verified []byte, cfg Config, rng *rand.Rand) (*Scheduler, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, ErrNoRand
	}
	cfg = cfg.populate(l.ChunkSize)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n, ns := l.Chunks(), l.Stripes()
	s := &Scheduler{
		cfg: cfg, lay: l, rng: rng,
		nchunks: n, nstripes: ns, ndata: l.DataChunks(),
		verified:  newBitset(n),
		busy:      newBitset(n),
		avail:     make([]uint16, n),
		cTie:      make([]uint16, n),
		ndeferred: make([]uint16, n),
		inflight:  make([]uint8, n),
		reqHead:   make([]int32, n),
		sVerified: make([]int32, ns),
		sInflight: make([]int32, ns),
		sOldest:   make([]time.Time, ns),
		sStale:    newBitset(ns),
		sComplete: newBitset(ns),
		focused:   newBitset(ns),
		sKey:      make([]uint64, ns),
		sTie:      make([]uint16, ns),
		order:     make([]int32, 0, ns),
		byID:      make(map[PeerID]*peer),
		banned:    make(map[PeerID]struct{}),
		scratch:   make([]uint16, 0, l.K+l.M),
	}
	s.dirty = true // order is built below, unsorted
	for c := range s.reqHead {
		s.reqHead[c] = -1
		if hasByte(verified, c) {
			s.verified.set(c)
			st, pos := l.StripeOf(c)
			s.sVerified[st]++
			if pos < l.StripeData(st) {
				s.verifiedData += int64(l.ChunkBytes(c))
			}
		}
	}
	for st := range ns {
		s.sTie[st] = uint16(rng.Uint32())
		s.sKey[st] = s.stripeKey(st)
		if int(s.sVerified[st]) >= l.StripeData(st) {
			s.finishStripe(st)
			continue
		}
		s.order = append(s.order, int32(st))
		s.needTotal += s.need(st)
	}
	for c := range s.cTie {
		s.cTie[c] = uint16(rng.Uint32())
	}
	s.checkDone()
	return s, nil
}

// Ready appends the actions produced since the last call to dst and
// returns it, with the time by which Tick must be called next (zero: no
// deadline; wait for events). The driver carries out the actions in order.
func (s *Scheduler) Ready(dst []Action) ([]Action, time.Time) {
	dst = append(dst, s.out...)
	clear(s.out)
	s.out = s.out[:0]
	return dst, s.deadline()
}

// Done reports whether every stripe is complete.
func (s *Scheduler) Done() bool { return s.done }

// Layout returns the layout the scheduler was built with.
func (s *Scheduler) Layout() Layout { return s.lay }

// Verified reports whether chunk c is verified.
func (s *Scheduler) Verified(c int) bool { return c >= 0 && c < s.nchunks && s.verified.has(c) }

// StripeComplete reports whether stripe st has d_s verified chunks.
func (s *Scheduler) StripeComplete(st int) bool {
	return st >= 0 && st < s.nstripes && s.sComplete.has(st)
}

// PeerJoined adds a peer with the chunks it has (bitmap as in New; nil:
// none yet). For a peer already known the bitmap adds to what it announced;
// a peer that reported PeerGone becomes usable again. A banned peer gets a
// Ban action again and nothing else.
func (s *Scheduler) PeerJoined(now time.Time, id PeerID, have []byte) {
	s.advance(now)
	if _, ok := s.banned[id]; ok {
		s.emit(Action{Kind: Ban, Peer: id, Chunk: -1, Stripe: -1})
		return
	}
	p := s.byID[id]
	if p == nil {
		p = newPeer(id, s.nchunks, &s.cfg)
		p.slot = len(s.peers)
		s.peers = append(s.peers, p)
		s.byID[id] = p
	} else if p.banned {
		s.emit(Action{Kind: Ban, Peer: id, Chunk: -1, Stripe: -1})
		return
	}
	p.gone = false
	added, n := false, 0
	for i, b := range have {
		for b != 0 {
			bit := trailingZeros8(b)
			b &^= 1 << bit
			c := i*8 + bit
			if c < s.nchunks {
				n++
			}
			if c < s.nchunks && !p.have.has(c) {
				s.clearDeferred(p, c)
				p.have.set(c)
				s.avail[c] = satInc(s.avail[c])
				added = true
			}
		}
	}
	if added {
		s.rekeyAll()
	}
	p.full = n == s.nchunks
	p.noWork = math.MaxUint64
	s.fill(now)
}

// Have records that peer id now has chunk c.
func (s *Scheduler) Have(now time.Time, id PeerID, c int) {
	s.advance(now)
	p := s.byID[id]
	if p == nil || p.banned || c < 0 || c >= s.nchunks || p.have.has(c) {
		return
	}
	s.clearDeferred(p, c)
	p.have.set(c)
	s.avail[c] = satInc(s.avail[c])
	st, _ := s.lay.StripeOf(c)
	s.rekey(st)
	p.noWork = math.MaxUint64
	s.fill(now)
}

// ChunkOK records that chunk c (n bytes) from peer id passed verification;
// latency is the request's time from send to last byte (0: the scheduler
// uses the time since it issued the request). It reports whether the chunk
// is new: false means it was verified before (an endgame duplicate or a
// late answer to a cancelled request) and need not be stored again.
func (s *Scheduler) ChunkOK(now time.Time, id PeerID, c int, n int, latency time.Duration) bool {
	s.advance(now)
	if c < 0 || c >= s.nchunks {
		return false
	}
	fresh := !s.verified.has(c)
	if fresh {
		s.setVerified(c)
	} else {
		s.cnt.Late++
	}
	if p := s.byID[id]; p != nil {
		if ri, ok := p.reqs[int32(c)]; ok {
			if latency <= 0 {
				latency = now.Sub(s.reqs[ri].sent)
			}
			s.release(ri, false)
			p.sampleRTT(latency)
			p.sampleRate(now, n, latency)
			p.onSuccess(&s.cfg, s.lay.ChunkSize)
		}
		p.badStreak = 0
		if fresh {
			p.received += int64(n)
		}
	}
	if fresh {
		s.cancelChunk(c)
		st, _ := s.lay.StripeOf(c)
		if !s.sComplete.has(st) && int(s.sVerified[st]) >= s.dataIn(st) {
			s.finishStripe(st)
			s.checkDone()
		}
	}
	s.fill(now)
	return fresh
}

// ChunkBad records that chunk c from peer id failed verification. The peer
// loses trust (Penalise) or is banned (Cancel for its requests, then Ban);
// the chunk is fetched again, from another peer if one has it.
func (s *Scheduler) ChunkBad(now time.Time, id PeerID, c int) {
	s.advance(now)
	p := s.byID[id]
	if p == nil || p.banned || c < 0 || c >= s.nchunks {
		return
	}
	if ri, ok := p.reqs[int32(c)]; ok {
		s.release(ri, false)
	}
	s.dropHave(p, c)
	s.undefer(c) // the peers that sent us here may serve it after all
	p.bad++
	p.badStreak++
	if p.bad >= s.cfg.BanAfter || p.badStreak >= s.cfg.BanStreak {
		s.ban(p)
	} else {
		s.emit(Action{Kind: Penalise, Peer: id, Chunk: -1, Stripe: -1})
	}
	s.fill(now)
}

// RequestFailed records that the request for chunk c at peer id ended
// without a chunk. Failures for requests the scheduler no longer tracks
// (cancelled, timed out) are ignored.
func (s *Scheduler) RequestFailed(now time.Time, id PeerID, c int, why Reason) {
	s.advance(now)
	p := s.byID[id]
	if p == nil || c < 0 || c >= s.nchunks {
		return
	}
	ri, ok := p.reqs[int32(c)]
	if !ok {
		return
	}
	s.release(ri, false)
	if why != Elsewhere && why != Busy {
		s.undefer(c) // the peers that sent us here may serve it after all
	}
	switch why {
	case Busy:
		s.cnt.Busy++
		p.onBusy(now, &s.cfg)
	case NotFound:
		s.cnt.NotFound++
		s.dropHave(p, c)
	case Elsewhere:
		s.cnt.Elsewhere++
		s.deferChunk(now, p, c)
	case PeerGone:
		p.gone = true
		s.releasePeer(p, false)
	default: // Timeout and unknown reasons
		s.cnt.Timeouts++
		p.onTimeout()
	}
	s.fill(now)
}

// PeerLeft forgets peer id: its outstanding requests are dropped (no Cancel
// actions: the connection is gone) and their chunks fetched elsewhere. A
// banned peer stays banned if it comes back.
func (s *Scheduler) PeerLeft(now time.Time, id PeerID) {
	s.advance(now)
	p := s.byID[id]
	if p == nil {
		return
	}
	s.releasePeer(p, false)
	if !p.banned {
		s.dropDeferred(p)
		s.dropHaves(p)
		s.removeLive(p)
	}
	delete(s.byID, id)
	s.fill(now)
}

// Tick times out requests whose deadline passed (Cancel actions; the chunks
// are fetched again) and lets peers whose busy backoff ended take requests.
func (s *Scheduler) Tick(now time.Time) {
	s.advance(now)
	for len(s.heap) > 0 {
		ri := s.heap[0]
		r := &s.reqs[ri]
		if r.deadline.After(now) {
			break
		}
		p, c := r.peer, int(r.chunk)
		s.release(ri, true)
		s.cnt.Timeouts++
		p.onTimeout()
		s.undefer(c)
	}
	s.expireDeferrals(now)
	s.fill(now)
}

// ban cancels the peer's requests, forgets its chunks and bans it.
func (s *Scheduler) ban(p *peer) {
	s.releasePeer(p, true)
	s.dropDeferred(p)
	s.dropHaves(p)
	s.removeLive(p)
	p.banned = true
	s.banned[p.id] = struct{}{}
	s.emit(Action{Kind: Ban, Peer: p.id, Chunk: -1, Stripe: -1})
}

// releasePeer drops every outstanding request of p, with Cancel actions if
// cancel is set.
func (s *Scheduler) releasePeer(p *peer, cancel bool) {
	for _, ri := range p.reqs {
		s.release(ri, cancel)
	}
}

// dropHaves removes p's chunks from the availability counts.
func (s *Scheduler) dropHaves(p *peer) {
	any := false
	for w, word := range p.have {
		for word != 0 {
			bit := trailingZeros64(word)
			word &^= 1 << bit
			c := w*64 + bit
			s.avail[c]--
			any = true
			if s.avail[c] == 0 {
				s.undefer(c) // p may still be in s.peers: its deferrals are dropped first
			}
		}
	}
	clear(p.have)
	if any {
		s.rekeyAll()
	}
}

// removeLive takes p out of the live peer list.
func (s *Scheduler) removeLive(p *peer) {
	if p.slot < 0 {
		return
	}
	last := s.peers[len(s.peers)-1]
	s.peers[p.slot] = last
	last.slot = p.slot
	s.peers[len(s.peers)-1] = nil
	s.peers = s.peers[:len(s.peers)-1]
	p.slot = -1
}

func (s *Scheduler) emit(a Action) { s.out = append(s.out, a) }

func (s *Scheduler) advance(now time.Time) {
	if now.After(s.now) {
		s.now = now
	}
}

// deadline returns the next time Tick is due: the earliest request
// deadline, end of a busy backoff or end of an ElsewhereWait (zero: none).
func (s *Scheduler) deadline() time.Time {
	var d time.Time
	if s.done {
		return d
	}
	if len(s.heap) > 0 {
		d = s.reqs[s.heap[0]].deadline
	}
	if e := s.nextDeferral(); !e.IsZero() && (d.IsZero() || e.Before(d)) {
		d = e
	}
	for _, p := range s.peers {
		if p.busyUntil.After(s.now) && (d.IsZero() || p.busyUntil.Before(d)) {
			d = p.busyUntil
		}
	}
	return d
}

// finishStripe marks st complete: cancels its outstanding requests, takes it
// out of the order and asks for a decode if data chunks are missing.
func (s *Scheduler) finishStripe(st int) {
	s.sComplete.set(st)
	s.complete++
	start, d := s.lay.StripeStart(st), s.dataIn(st)
	for c := start; c < start+d+s.lay.M; c++ {
		s.cancelChunk(c)
	}
	s.orderRemove(st)
	for c := start; c < start+d; c++ {
		if !s.verified.has(c) {
			s.emit(Action{Kind: DecodeStripe, Chunk: -1, Stripe: st})
			break
		}
	}
}

// cancelChunk cancels every outstanding request for chunk c.
func (s *Scheduler) cancelChunk(c int) {
	for s.reqHead[c] >= 0 {
		s.release(s.reqHead[c], true)
	}
}

func (s *Scheduler) checkDone() {
	if !s.done && s.complete == s.nstripes {
		s.done = true
		s.emit(Action{Kind: Done, Chunk: -1, Stripe: -1})
	}
}

// dataIn returns d_s, the number of data chunks of stripe st, without the
// division Layout.StripeData does.
func (s *Scheduler) dataIn(st int) int { return min(s.lay.K, s.ndata-st*s.lay.K) }

// need returns how many more chunks stripe st needs requested: d_s minus
// its verified chunks minus its unverified chunks in flight, at least 0.
func (s *Scheduler) need(st int) int {
	return max(0, s.dataIn(st)-int(s.sVerified[st])-int(s.sInflight[st]))
}

// setVerified marks chunk c verified and keeps the counters in step.
func (s *Scheduler) setVerified(c int) {
	st, pos := s.lay.StripeOf(c)
	before := s.need(st)
	if s.inflight[c] > 0 {
		s.sInflight[st]--
	}
	s.verified.set(c)
	s.sVerified[st]++
	s.needTotal += s.need(st) - before
	if pos < s.dataIn(st) {
		s.verifiedData += int64(s.lay.ChunkBytes(c))
	}
}

func satInc(v uint16) uint16 {
	if v == math.MaxUint16 {
		return v
	}
	return v + 1
}

// String summarises the state, for test failures.
func (s *Scheduler) String() string {
	return fmt.Sprintf("sched{stripes %d/%d, requests %d (%d B), need %d, peers %d, done %v}",
		s.complete, s.nstripes, s.nreqs, s.inBytes, s.needTotal, len(s.peers), s.done)
}
