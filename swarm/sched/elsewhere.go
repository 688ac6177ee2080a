package sched

import (
	"math"
	"time"
)

// Deferrals: a peer that holds a chunk may answer a request for it with
// "fetch it elsewhere" (a super-seeding seeder that already gave the chunk
// to another peer; RequestFailed with Elsewhere). The scheduler then stops
// counting the peer as a holder of the chunk, as for NotFound, but
// remembers it (peer.deferred) and counts it again
//
//   - when a request for the chunk at any other peer fails (times out,
//     finds it not held, or brings bad data): the peers it was sent to may
//     not serve it after all (a busy answer is not such a sign);
//   - when no other live peer is known to hold the chunk any more (the last
//     one left or was banned);
//   - ElsewhereWait after the refusal, and every ElsewhereWait after that,
//     if by then no other peer that holds it can be asked (none announced
//     it to us, or all are backing off after busy answers), and the peer
//     has no other chunk for us or Config.MaxElsewhereWait passed since the
//     refusal.
//
// So a refusal costs a download at most ElsewhereWait once the refusing
// peer has nothing else for it (Config.MaxElsewhereWait before: meanwhile that
// peer's uplink serves other chunks), or one failed request elsewhere,
// however the peer the chunk went to behaves; a peer
// announcing the chunk (Have) clears the deferral. Memory: one bit per
// chunk per peer, one counter per chunk, and one queue entry per deferral
// (each (peer, chunk) is deferred at most once until it is counted again).

// deferral is a queued ElsewhereWait: at until, p counts again as a holder
// of chunk c if nobody else is known to hold it.
type deferral struct {
	p     *peer
	c     int32
	until time.Time
	since time.Time // the refusal
}

// deferChunk records that p holds chunk c but asked us to fetch it
// elsewhere first.
func (s *Scheduler) deferChunk(now time.Time, p *peer, c int) {
	s.dropHave(p, c)
	if p.deferred.has(c) {
		return
	}
	p.deferred.set(c)
	s.ndeferred[c]++
	s.deferrals = append(s.deferrals, deferral{p: p, c: int32(c), until: now.Add(s.cfg.ElsewhereWait), since: now})
}

// dropHave stops counting p as a holder of chunk c.
func (s *Scheduler) dropHave(p *peer, c int) {
	if p.have.has(c) {
		p.have.clear(c)
		s.avail[c]--
		st, _ := s.lay.StripeOf(c)
		s.rekey(st)
		if s.avail[c] == 0 {
			s.undefer(c)
		}
	}
}

// clearDeferred forgets that p deferred chunk c (it announced the chunk,
// or is counted as a holder again).
func (s *Scheduler) clearDeferred(p *peer, c int) {
	if p.deferred.has(c) {
		p.deferred.clear(c)
		s.ndeferred[c]--
	}
}

// dropDeferred forgets every deferral of p (it left or was banned).
func (s *Scheduler) dropDeferred(p *peer) {
	for w, word := range p.deferred {
		for word != 0 {
			bit := trailingZeros64(word)
			word &^= 1 << bit
			s.ndeferred[w*64+bit]--
		}
	}
	clear(p.deferred)
}

// undefer counts every live peer that deferred chunk c as its holder
// again.
func (s *Scheduler) undefer(c int) {
	if s.ndeferred[c] == 0 {
		return
	}
	for _, p := range s.peers {
		if p.deferred.has(c) {
			s.recount(p, c)
		}
	}
}

// recount counts p as a holder of chunk c again.
func (s *Scheduler) recount(p *peer, c int) {
	s.clearDeferred(p, c)
	if p.have.has(c) {
		return
	}
	p.have.set(c)
	s.avail[c] = satInc(s.avail[c])
	st, _ := s.lay.StripeOf(c)
	s.rekey(st)
	p.noWork = math.MaxUint64
}

// expireDeferrals ends the ElsewhereWait of deferrals due at now: a
// deferring peer counts as a holder again if no other peer that holds the
// chunk can be asked now (none announced it, or all are gone or backing
// off after busy answers) and either it has no other chunk for us or
// Config.MaxElsewhereWait has passed since the refusal; otherwise it waits
// another ElsewhereWait. While the seeder has other chunks for us, asking
// it again early costs its uplink a second copy if the peer it gave the
// chunk to announces it late (on a fleet its have reaches us behind the
// chunks it uploads to us, a second or more after the seeder's refusal)
// and gains nothing, since the seeder's uplink has other work; once it
// has none, we ask again at once (ElsewhereWait), so peers that claim
// chunks and never serve them delay the download's end by ElsewhereWait
// waves, as before.
func (s *Scheduler) expireDeferrals(now time.Time) {
	n := 0
	var again []deferral
	for _, d := range s.deferrals {
		if d.until.After(now) {
			break
		}
		n++
		p, c := d.p, int(d.c)
		switch {
		case !p.deferred.has(c) || s.byID[p.id] != p || p.banned:
			// counted again already, or the peer is gone
		case s.verified.has(c):
			s.clearDeferred(p, c)
		case !s.usableHolder(c, now) && (now.Sub(d.since) >= s.cfg.MaxElsewhereWait || s.pick(p) < 0):
			s.recount(p, c)
		default:
			d.until = now.Add(s.cfg.ElsewhereWait)
			again = append(again, d)
		}
	}
	if n > 0 {
		s.deferrals = append(append(s.deferrals[:0], s.deferrals[n:]...), again...)
	}
}

// usableHolder reports whether a peer that announced chunk c can be sent
// requests at now.
func (s *Scheduler) usableHolder(c int, now time.Time) bool {
	if s.avail[c] == 0 {
		return false
	}
	for _, p := range s.peers {
		if p.have.has(c) && p.usable(now) {
			return true
		}
	}
	return false
}

// nextDeferral returns when the oldest queued deferral is due (zero: none).
func (s *Scheduler) nextDeferral() time.Time {
	if len(s.deferrals) == 0 {
		return time.Time{}
	}
	return s.deferrals[0].until
}
