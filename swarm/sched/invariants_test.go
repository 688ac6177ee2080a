package sched

import (
	"fmt"
	"slices"
	"time"
)

// checkInternal recomputes the scheduler's derived state from scratch and
// reports the first counter that disagrees: the differential check run
// after every simulated step.
func checkInternal(s *Scheduler) error {
	avail := make([]int, s.nchunks)
	for _, p := range s.peers {
		if p.banned {
			return fmt.Errorf("banned peer %v in live list", p.id)
		}
		for c := range s.nchunks {
			if p.have.has(c) {
				avail[c]++
			}
		}
	}
	for c := range s.nchunks {
		if int(s.avail[c]) != avail[c] {
			return fmt.Errorf("chunk %d: avail %d, peers announce %d", c, s.avail[c], avail[c])
		}
	}
	// Deferrals: never both announced and deferred; counts per chunk.
	deferred := make([]int, s.nchunks)
	for _, p := range s.peers {
		for c := range s.nchunks {
			if p.deferred.has(c) {
				if p.have.has(c) {
					return fmt.Errorf("peer %v: chunk %d both announced and deferred", p.id, c)
				}
				deferred[c]++
			}
		}
	}
	for c := range s.nchunks {
		if int(s.ndeferred[c]) != deferred[c] {
			return fmt.Errorf("chunk %d: ndeferred %d, peers deferred %d", c, s.ndeferred[c], deferred[c])
		}
	}
	// Requests: per chunk lists, per peer maps, bytes.
	inflight := make([]int, s.nchunks)
	var bytes int64
	n := 0
	for c := range s.nchunks {
		var seen []*peer
		for ri := s.reqHead[c]; ri >= 0; ri = s.reqs[ri].next {
			r := &s.reqs[ri]
			if int(r.chunk) != c {
				return fmt.Errorf("request %d for chunk %d listed under %d", ri, r.chunk, c)
			}
			if slices.Contains(seen, r.peer) {
				return fmt.Errorf("chunk %d requested twice from %v", c, r.peer.id)
			}
			seen = append(seen, r.peer)
			if got, ok := r.peer.reqs[int32(c)]; !ok || got != ri {
				return fmt.Errorf("request %d (chunk %d) missing from peer %v map", ri, c, r.peer.id)
			}
			if r.peer.banned || r.peer.slot < 0 || s.byID[r.peer.id] != r.peer {
				return fmt.Errorf("request for chunk %d at banned or departed peer %v", c, r.peer.id)
			}
			if int(r.heapIdx) >= len(s.heap) || s.heap[r.heapIdx] != ri {
				return fmt.Errorf("request %d not at its heap position", ri)
			}
			inflight[c]++
			bytes += int64(r.size)
			n++
		}
		if int(s.inflight[c]) != inflight[c] {
			return fmt.Errorf("chunk %d: inflight %d, listed %d", c, s.inflight[c], inflight[c])
		}
		if s.busy.has(c) != (inflight[c] > 0) {
			return fmt.Errorf("chunk %d: busy bit %v with %d requests", c, s.busy.has(c), inflight[c])
		}
		if inflight[c] > s.cfg.MaxDuplicates {
			return fmt.Errorf("chunk %d: %d requests, MaxDuplicates %d", c, inflight[c], s.cfg.MaxDuplicates)
		}
		if inflight[c] > 0 && s.verified.has(c) {
			return fmt.Errorf("verified chunk %d still has %d requests", c, inflight[c])
		}
	}
	if n != s.nreqs || bytes != s.inBytes || len(s.heap) != n {
		return fmt.Errorf("requests: listed %d (%d B), counted %d (%d B), heap %d", n, bytes, s.nreqs, s.inBytes, len(s.heap))
	}
	if s.inBytes > s.cfg.MaxInflightBytes {
		return fmt.Errorf("in-flight %d B over global cap %d", s.inBytes, s.cfg.MaxInflightBytes)
	}
	for id, p := range s.byID {
		var pb int64
		for c, ri := range p.reqs {
			if s.reqs[ri].peer != p || s.reqs[ri].chunk != c {
				return fmt.Errorf("peer %v map entry %d -> request %d is stale", id, c, ri)
			}
			if !p.have.has(int(c)) && !p.banned {
				// The peer's have bit may be cleared by NotFound/bad only
				// after its request was released.
				return fmt.Errorf("peer %v has request for chunk %d it does not announce", id, c)
			}
			pb += int64(s.reqs[ri].size)
		}
		if pb != p.inflightBytes {
			return fmt.Errorf("peer %v: in-flight %d B, requests sum %d B", id, p.inflightBytes, pb)
		}
		if p.inflightBytes > s.cfg.MaxPeerInflightBytes {
			return fmt.Errorf("peer %v: in-flight %d B over cap %d", id, p.inflightBytes, s.cfg.MaxPeerInflightBytes)
		}
		if len(p.reqs) > p.limit && len(p.reqs) > 0 {
			// The limit may shrink below the outstanding count (timeouts,
			// busy), never the other way; no check beyond MaxQueue.
			if len(p.reqs) > s.cfg.MaxQueue {
				return fmt.Errorf("peer %v: %d requests over MaxQueue %d", id, len(p.reqs), s.cfg.MaxQueue)
			}
		}
	}
	for i := 1; i < len(s.heap); i++ {
		if s.heapLess(i, (i-1)/2) {
			return fmt.Errorf("heap order broken at %d", i)
		}
	}
	// Stripes.
	need, complete := 0, 0
	var inOrder []int32
	for st := range s.nstripes {
		start, d := s.lay.StripeStart(st), s.lay.StripeData(st)
		v, f := 0, 0
		for c := start; c < start+d+s.lay.M; c++ {
			if s.verified.has(c) {
				v++
			} else if inflight[c] > 0 {
				f++
			}
		}
		if !s.sStale.has(st) {
			var oldest time.Time
			for c := start; c < start+d+s.lay.M; c++ {
				for ri := s.reqHead[c]; ri >= 0; ri = s.reqs[ri].next {
					if t := s.reqs[ri].sent; oldest.IsZero() || t.Before(oldest) {
						oldest = t
					}
				}
			}
			if !oldest.IsZero() && !oldest.Equal(s.sOldest[st]) {
				return fmt.Errorf("stripe %d: oldest request sent %v, cached %v", st, oldest, s.sOldest[st])
			}
		}
		if int(s.sVerified[st]) != v || int(s.sInflight[st]) != f {
			return fmt.Errorf("stripe %d: verified %d/%d, inflight %d/%d (counted/kept)", st, v, s.sVerified[st], f, s.sInflight[st])
		}
		if (v >= d) != s.sComplete.has(st) {
			return fmt.Errorf("stripe %d: %d of %d verified, complete flag %v", st, v, d, s.sComplete.has(st))
		}
		if v >= d {
			complete++
			if f > 0 {
				return fmt.Errorf("complete stripe %d has %d chunks in flight", st, f)
			}
			continue
		}
		inOrder = append(inOrder, int32(st))
		need += max(0, d-v-f)
		if k := s.stripeKey(st); k != s.sKey[st] {
			return fmt.Errorf("stripe %d: key %x, recomputed %x", st, s.sKey[st], k)
		}
	}
	if need != s.needTotal || complete != s.complete {
		return fmt.Errorf("need %d (kept %d), complete %d (kept %d)", need, s.needTotal, complete, s.complete)
	}
	got := slices.Clone(s.order)
	slices.Sort(got)
	if !slices.Equal(got, inOrder) {
		return fmt.Errorf("order holds %v, incomplete stripes are %v", got, inOrder)
	}
	if !s.dirty {
		for i := 1; i < len(s.order); i++ {
			if !s.less(s.order[i-1], s.order[i]) {
				return fmt.Errorf("order not sorted at %d", i)
			}
		}
	}
	if err := checkFocus(s); err != nil {
		return err
	}
	if s.done != (complete == s.nstripes) {
		return fmt.Errorf("done %v with %d of %d stripes complete", s.done, complete, s.nstripes)
	}
	return nil
}
