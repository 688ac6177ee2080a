package swarm

import (
	"context"
	"slices"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/swarm/sched"
)

// Session slots. A download runs at most Config.MaxSessions sessions at
// once; every other known peer waits in run.queue (one entry per peer, so
// the queue is bounded by MaxPeers). Only the loop goroutine touches this
// state.
//
// A slot is held from the start of a session goroutine until the loop
// handles its evLeft, so the cap bounds goroutines and open session streams,
// not just the scheduler's view. When a session ends its peer goes back to
// the queue with a pause (sessionBackoff doubling to maxSessionBackoff for
// a session that failed or was cut short, or to crowdSessionBackoff while
// more peers are known than slots, so that a crowd of failing peers is
// dialled at most about MaxPeers/30 s times a second, not MaxPeers/5 s;
// sessionBackoff after a join), and
// a free slot goes to the waiting peer with the fewest fruitless sessions
// since its last useful one (strikes), the longest-waiting among equals,
// whose pause is over. So a crowd of peers that answer "not found", cannot
// be reached or fail their hello pass the slots around among themselves,
// behind any peer that has not failed yet.
//
// A session that has produced no verified chunk for SessionIdle (counted
// from its start or its last chunk), or for EmptySessionIdle if its peer
// joined announcing no chunk and has announced none since, while a peer is
// ready to take its slot is cut short: the scheduler hears PeerLeft at once, the session's chunk
// requests are cancelled, and the slot is handed over once the session
// goroutine has ended. Peers that hold chunks we need and send them keep
// their slots.

const (
	sessionBackoff      = 250 * time.Millisecond
	maxSessionBackoff   = 5 * time.Second
	crowdSessionBackoff = 30 * time.Second
)

// startSession gives peer id a slot and starts its session.
func (r *run) startSession(ctx context.Context, id identity.PeerID, ps *peerState, now time.Time) {
	sctx, cancel := context.WithCancel(ctx)
	ps.cancel, ps.running, ps.stopping, ps.produced, ps.offers, ps.useful = cancel, true, false, false, false, now
	r.running++
	r.d.sessions.Store(int64(r.running))
	if int64(r.running) > r.d.sessionsPeak.Load() {
		r.d.sessionsPeak.Store(int64(r.running))
	}
	addr := ps.addr
	r.wg.Go(func() {
		defer cancel()
		_, err := r.sessionOnce(sctx, id, addr)
		// On the run's context: the loop must hear of the end to free the
		// slot, also when the session was cancelled.
		r.send(ctx, event{kind: evLeft, peer: id, err: err})
	})
}

// sessionEnded frees the slot of a session that ended (its evLeft) and
// puts its peer back in the queue unless it is banned.
func (r *run) sessionEnded(id identity.PeerID, ps *peerState, joined bool, now time.Time, err error) {
	if !ps.running {
		return
	}
	ps.running = false
	ps.cancel = nil
	r.running--
	r.d.sessions.Store(int64(r.running))
	r.slotsDirty = true
	if ps.banned {
		return
	}
	if ps.stopping || (!joined && len(r.queue) > 0) {
		r.d.sessionsYielded.Add(1)
	}
	switch {
	case ps.produced && !ps.stopping:
		ps.strikes, ps.backoff = 0, sessionBackoff
	case joined && !ps.stopping:
		ps.strikes++
		ps.backoff = sessionBackoff
	default: // failed, or cut short for a waiting peer
		ps.strikes++
	}
	if ps.backoff == 0 {
		ps.backoff = sessionBackoff
	}
	r.clog.debug("session ended", "peer", id.Short(), "content", r.d.id.String(), "strikes", ps.strikes, "err", err)
	r.enqueue(id, ps, now.Add(ps.backoff))
	limit := maxSessionBackoff
	if len(r.peers) > r.d.cfg.MaxSessions {
		limit = crowdSessionBackoff
	}
	ps.backoff = min(2*ps.backoff, limit)
}

// enqueue puts peer id at the end of the queue, not to start before at.
func (r *run) enqueue(id identity.PeerID, ps *peerState, at time.Time) {
	ps.queued, ps.notBefore = true, at
	r.queue = append(r.queue, id)
	r.d.sessionsWaiting.Store(int64(len(r.queue)))
	r.slotsDirty = true
}

// manageSessions fills free slots from the queue and cuts short idle
// sessions while peers are ready to take their slots. It returns when it
// must run again if nothing else happens (zero: not by itself). It may
// report PeerLeft to the scheduler, so it runs between batches.
func (r *run) manageSessions(ctx context.Context, now time.Time) time.Time {
	r.slotsDirty = false
	var next time.Time
	later := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	// Drop banned peers, then start the best ready peers while slots are
	// free.
	r.queue = slices.DeleteFunc(r.queue, func(id identity.PeerID) bool {
		ps := r.peers[id]
		if ps.banned {
			ps.queued = false
		}
		return ps.banned
	})
	for r.running < r.d.cfg.MaxSessions {
		i := r.bestReady(now)
		if i < 0 {
			break
		}
		id := r.queue[i]
		r.queue = slices.Delete(r.queue, i, i+1)
		ps := r.peers[id]
		ps.queued = false
		r.startSession(ctx, id, ps, now)
	}
	r.d.sessionsWaiting.Store(int64(len(r.queue)))
	if len(r.queue) == 0 {
		return next
	}
	ready := 0
	for _, id := range r.queue {
		ps := r.peers[id]
		if ps.notBefore.After(now) {
			later(ps.notBefore)
		} else {
			ready++
		}
	}
	// Every slot is taken and peers wait: sessions idle for SessionIdle
	// yield, the longest idle first, one per ready peer (minus those
	// already stopping, whose slots are on their way).
	var idle []identity.PeerID
	for id, ps := range r.peers {
		switch {
		case !ps.running:
		case ps.stopping:
			ready--
		case now.Sub(ps.useful) >= r.idleLimit(ps):
			idle = append(idle, id)
		default:
			later(ps.useful.Add(r.idleLimit(ps)))
		}
	}
	if ready <= 0 || len(idle) == 0 {
		return next
	}
	slices.SortFunc(idle, func(a, b identity.PeerID) int { return r.peers[a].useful.Compare(r.peers[b].useful) })
	for _, id := range idle[:min(ready, len(idle))] {
		r.stopSession(id, now)
	}
	return next
}

// idleLimit is how long the running session of ps may go without a
// verified chunk while peers wait for its slot: SessionIdle, or
// EmptySessionIdle once the peer has joined announcing no chunk at all
// (it has nothing to send until it announces one).
func (r *run) idleLimit(ps *peerState) time.Duration {
	if ps.joined && !ps.offers {
		return min(r.d.cfg.EmptySessionIdle, r.d.cfg.SessionIdle)
	}
	return r.d.cfg.SessionIdle
}

// bestReady returns the index in the queue of the peer to start next: the
// fewest strikes, then the longest waiting, among those whose pause is
// over; -1 if none is ready.
func (r *run) bestReady(now time.Time) int {
	best := -1
	for i, id := range r.queue {
		ps := r.peers[id]
		if ps.notBefore.After(now) {
			continue
		}
		if best < 0 || ps.strikes < r.peers[r.queue[best]].strikes {
			best = i
		}
	}
	return best
}

// stopSession cuts the session of peer id short for a waiting peer: the
// scheduler forgets the peer now, its chunk requests are cancelled, and the
// slot is free once the session goroutine reports its end.
func (r *run) stopSession(id identity.PeerID, now time.Time) {
	ps := r.peers[id]
	ps.stopping = true
	ps.cancel()
	delete(r.seeders, id)
	if ps.joined {
		ps.joined = false
		r.d.peers.Add(-1)
		r.s.PeerLeft(now, sched.PeerID(id))
	}
	for k, req := range r.reqs {
		if k.peer == id {
			req.cancel()
			delete(r.reqs, k)
		}
	}
}
