package sched

import (
	"math/bits"
	"slices"
	"time"
)

// fill gives every peer with room in its queue requests until its queue,
// the byte caps or the work run out. Peers are visited round-robin from a
// rotating start, so capacity freed under the global cap is shared; peers
// whose last request timed out (and nothing arrived since) come last, so
// under the global cap a stalled peer gets a slot only when no healthy
// peer can use it.
func (s *Scheduler) fill(now time.Time) {
	if s.done || len(s.peers) == 0 {
		return
	}
	s.sortOrder()
	n := len(s.peers)
	start := s.rr % n
	s.rr++
	for _, suspect := range [2]bool{false, true} {
		for i := range n {
			p := s.peers[(start+i)%n]
			if (p.backoff > 0) != suspect {
				continue
			}
			for s.room(p, now) && p.noWork != s.workGen {
				c := s.pick(p)
				if c < 0 {
					p.noWork = s.workGen
					break
				}
				s.issue(now, p, c)
			}
		}
	}
}

// room reports whether p may take one more request of up to a full chunk.
func (s *Scheduler) room(p *peer, now time.Time) bool {
	cs := int64(s.lay.ChunkSize)
	return p.usable(now) && len(p.reqs) < p.limit &&
		p.inflightBytes+cs <= s.cfg.MaxPeerInflightBytes &&
		s.inBytes+cs <= s.cfg.MaxInflightBytes
}

// pick returns the chunk p should be asked for next, or -1.
//
// Normal mode scans the stripes rarest first and takes, in the first stripe
// that still needs chunks (need > 0) and where p has one that nobody is
// fetching: its least announced data chunk. If p has no such data chunk in
// any stripe, it takes a parity chunk in the rarest stripe where it has
// one: parity routes around data chunks that nobody has or that only busy,
// slow or saturated peers have. When no stripe needs chunks any connected
// peer could serve (every remaining need is covered by outstanding
// requests, or only chunks nobody has are missing), the endgame picks.
func (s *Scheduler) pick(p *peer) int {
	if s.mode == FetchNone {
		return -1
	}
	if c := s.pickFocus(p); c >= 0 || s.mode == FetchFocused {
		return c
	}
	parity := -1
	for _, st32 := range s.order {
		st := int(st32)
		if s.need(st) == 0 {
			continue
		}
		start, d := s.lay.StripeStart(st), s.dataIn(st)
		if c := s.candidate(p, start, start+d); c >= 0 {
			return c
		}
		if parity < 0 && s.lay.M > 0 && s.parityFrom(p, st) {
			parity = s.candidate(p, start+d, start+d+s.lay.M)
		}
	}
	if parity >= 0 {
		return parity
	}
	if s.endgame() {
		return s.pickEndgame(p)
	}
	return -1
}

// endgame reports whether idle peers may help outstanding requests: some
// are outstanding and no stripe needs a chunk that a connected peer could
// be asked for (either nothing is needed, or only chunks nobody has).
func (s *Scheduler) endgame() bool {
	if s.nreqs == 0 {
		return false
	}
	if s.needTotal == 0 {
		return true
	}
	for _, st32 := range s.order {
		st := int(st32)
		if s.need(st) == 0 {
			continue
		}
		start := s.lay.StripeStart(st)
		end := start + s.dataIn(st) + s.lay.M
		for _, q := range s.peers {
			if !q.gone && s.candidate(q, start, end) >= 0 {
				return false
			}
		}
	}
	return true
}

// candidate returns the least announced chunk in [lo, hi) that p has and
// that is neither verified nor requested from anyone, or -1. Among equally
// announced chunks it takes the one with the least random tie-break (drawn
// per download), not the first: downloaders that see the same
// announcements and walk the same rare stripe then ask a seeder for
// different chunks, so a super-seeding seeder gives each chunk to one of
// them instead of refusing the others (seen on TestFleet: most of the
// publisher's refusals, each a request slot spent for a round trip).
func (s *Scheduler) candidate(p *peer, lo, hi int) int {
	best, bestAvail, bestTie := -1, uint16(0), uint16(0)
	for w := lo >> 6; w<<6 < hi; w++ {
		m := p.have[w] &^ s.verified[w] &^ s.busy[w]
		if w<<6 < lo {
			m &= ^uint64(0) << (uint(lo) & 63)
		}
		if end := (w + 1) << 6; end > hi {
			m &= ^uint64(0) >> uint(end-hi)
		}
		for m != 0 {
			c := w<<6 + bits.TrailingZeros64(m)
			m &= m - 1
			if a := s.avail[c]; best < 0 || a < bestAvail || (a == bestAvail && s.cTie[c] < bestTie) {
				best, bestAvail, bestTie = c, a, s.cTie[c]
			}
		}
	}
	return best
}

// egStripe is a stripe with outstanding requests, for the endgame scan.
type egStripe struct {
	oldest time.Time
	st     int32
}

// oldest returns the send time of the oldest outstanding request in st,
// recomputing it if the request that held it has left.
func (s *Scheduler) oldest(st int) time.Time {
	if !s.sStale.has(st) {
		return s.sOldest[st]
	}
	var t time.Time
	start := s.lay.StripeStart(st)
	for c := start; c < start+s.dataIn(st)+s.lay.M; c++ {
		for ri := s.reqHead[c]; ri >= 0; ri = s.reqs[ri].next {
			if r := &s.reqs[ri]; t.IsZero() || r.sent.Before(t) {
				t = r.sent
			}
		}
	}
	s.sOldest[st] = t
	s.sStale.clear(st)
	return t
}

// pickEndgame returns a chunk for p once every needed chunk is requested,
// to route around requests stuck at other (slower) peers. It helps the
// stripes in the order of their oldest outstanding request (the likeliest
// to be stuck). Within a stripe, in order: an unrequested data chunk p has,
// a duplicate of the oldest data request, an unrequested parity chunk (the
// way around a data chunk p does not have), a duplicate of a parity
// request. A stripe's surplus (requests beyond the chunks it still needs)
// stays below (MaxDuplicates-1) per chunk that other peers are fetching, so
// a peer never races its own requests. Losers are cancelled when the chunk
// arrives or the stripe completes.
func (s *Scheduler) pickEndgame(p *peer) int {
	buf := s.egBuf[:0]
	for _, st := range s.order {
		if s.sInflight[st] > 0 {
			buf = append(buf, egStripe{s.oldest(int(st)), st})
		}
	}
	slices.SortFunc(buf, func(a, b egStripe) int {
		if c := a.oldest.Compare(b.oldest); c != 0 {
			return c
		}
		return int(a.st - b.st)
	})
	s.egBuf = buf
	for _, e := range buf {
		if c := s.helpStripe(p, int(e.st)); c >= 0 {
			return c
		}
	}
	return -1
}

// helpStripe returns the chunk p should fetch to help stripe st in the
// endgame, or -1.
func (s *Scheduler) helpStripe(p *peer, st int) int {
	start, d := s.lay.StripeStart(st), s.dataIn(st)
	end := start + d + s.lay.M
	reqs, foreign := 0, 0
	dupData, dupParity := -1, -1
	var dataSent, paritySent time.Time
	for c := start; c < end; c++ {
		if s.inflight[c] == 0 {
			continue
		}
		reqs += int(s.inflight[c])
		mine, first := false, time.Time{}
		for ri := s.reqHead[c]; ri >= 0; ri = s.reqs[ri].next {
			r := &s.reqs[ri]
			mine = mine || r.peer == p
			if first.IsZero() || r.sent.Before(first) {
				first = r.sent
			}
		}
		if mine && s.inflight[c] == 1 {
			continue // only p fetches it
		}
		foreign++
		if mine || int(s.inflight[c]) >= s.cfg.MaxDuplicates || !p.have.has(c) {
			continue
		}
		if c < start+d {
			if dupData < 0 || first.Before(dataSent) {
				dupData, dataSent = c, first
			}
		} else if dupParity < 0 || first.Before(paritySent) {
			dupParity, paritySent = c, first
		}
	}
	if surplus := reqs - (d - int(s.sVerified[st])); foreign == 0 || surplus >= foreign*(s.cfg.MaxDuplicates-1) {
		return -1
	}
	if c := s.candidate(p, start, start+d); c >= 0 {
		return c
	}
	if dupData >= 0 {
		return dupData
	}
	if s.lay.M == 0 || !s.parityFrom(p, st) {
		return -1
	}
	if c := s.candidate(p, start+d, end); c >= 0 {
		return c
	}
	return dupParity
}

// parityFrom reports whether p may be asked for parity in stripe st. A
// peer that announced every chunk (a publisher) and has no data chunk of
// the stripe to give us has deferred them (a super-seeding seeder sent
// them to other peers, see elsewhere.go): they are coming from those
// peers, or from p after ElsewhereWait, and parity from p would spend its
// uplink, the fleet's scarcest, on chunks nobody needs. So p is asked for
// parity only where it dropped a data chunk we miss (not held after all).
func (s *Scheduler) parityFrom(p *peer, st int) bool {
	if !p.full {
		return true
	}
	start, d := s.lay.StripeStart(st), s.dataIn(st)
	for c := start; c < start+d; c++ {
		if !s.verified.has(c) && !p.have.has(c) && !p.deferred.has(c) {
			return true
		}
	}
	return false
}

// issue records a request for chunk c at p and emits it.
func (s *Scheduler) issue(now time.Time, p *peer, c int) {
	size := s.lay.ChunkBytes(c)
	var ri int32
	if n := len(s.free); n > 0 {
		ri = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		ri = int32(len(s.reqs))
		s.reqs = append(s.reqs, request{})
	}
	s.reqs[ri] = request{
		peer:     p,
		chunk:    int32(c),
		next:     s.reqHead[c],
		size:     int32(size),
		sent:     now,
		deadline: now.Add(p.requestTimeout(&s.cfg, size)),
	}
	s.reqs[ri].due = s.reqs[ri].deadline.UnixNano()
	s.reqHead[c] = ri
	p.reqs[int32(c)] = ri
	p.inflightBytes += int64(size)
	s.inBytes += int64(size)
	s.nreqs++

	s.cnt.Issued++
	if s.inflight[c] > 0 {
		s.cnt.Duplicates++
	}
	if s.lay.IsParity(c) {
		s.cnt.Parity++
	}
	if p.full {
		s.cnt.FromFull++
		if s.avail[c] > 1 {
			s.cnt.FullShared++
		}
	}
	st, _ := s.lay.StripeOf(c)
	before := s.need(st)
	if s.inflight[c] == 0 {
		s.busy.set(c)
		if !s.verified.has(c) {
			s.sInflight[st]++
		}
	}
	s.inflight[c]++
	if !s.sStale.has(st) && (s.sOldest[st].IsZero() || now.Before(s.sOldest[st])) {
		s.sOldest[st] = now
	}
	if s.needTotal += s.need(st) - before; s.needTotal == 0 && before > 0 {
		s.workGen++ // the endgame begins: idle peers may duplicate
	}
	s.heapPush(ri)
	s.emit(Action{Kind: Request, Peer: p.id, Chunk: c, Stripe: -1})
}

// release forgets request ri, with a Cancel action if cancel is set.
func (s *Scheduler) release(ri int32, cancel bool) {
	r := &s.reqs[ri]
	p, c := r.peer, int(r.chunk)
	for pp := &s.reqHead[c]; *pp >= 0; pp = &s.reqs[*pp].next {
		if *pp == ri {
			*pp = r.next
			break
		}
	}
	delete(p.reqs, r.chunk)
	p.inflightBytes -= int64(r.size)
	s.inBytes -= int64(r.size)
	s.nreqs--
	s.heapRemove(ri)

	st, _ := s.lay.StripeOf(c)
	if r.sent.Equal(s.sOldest[st]) {
		s.sStale.set(st)
	}
	before := s.need(st)
	s.inflight[c]--
	if s.inflight[c] == 0 {
		s.busy.clear(c)
		if !s.verified.has(c) {
			s.sInflight[st]--
		}
	}
	s.needTotal += s.need(st) - before
	if !s.verified.has(c) && !s.sComplete.has(st) {
		s.workGen++
	}
	if cancel {
		s.emit(Action{Kind: Cancel, Peer: p.id, Chunk: c, Stripe: -1})
	}
	*r = request{heapIdx: -1}
	s.free = append(s.free, ri)
}
