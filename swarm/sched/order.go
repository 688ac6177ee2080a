package sched

import (
	"math/bits"
	"slices"
)

// The rarity order. Each incomplete stripe has a key; lower keys are rarer
// and are scanned first. The key packs, from the most significant bits:
//
//	availability of the stripe's d_s-th best chunk (16 bits)
//	  how many peers could each serve one of the d_s most common chunks:
//	  the number of "copies" of the stripe in the swarm
//	total announcements of the stripe's chunks (24 bits, saturating)
//	a random tie-break fixed at construction (16 bits)
//
// order holds the incomplete stripes sorted by (key, index). A single Have
// moves one stripe (binary search and a short copy); bulk changes (a peer
// joining or leaving) recompute every key and sort once.

// stripeKey computes the rarity key of stripe st from the avail counts.
func (s *Scheduler) stripeKey(st int) uint64 {
	start, d := s.lay.StripeStart(st), s.dataIn(st)
	buf := s.scratch[:0]
	sum := 0
	for c := start; c < start+d+s.lay.M; c++ {
		buf = append(buf, s.avail[c])
		sum += int(s.avail[c])
	}
	slices.Sort(buf)
	kth := buf[len(buf)-d] // the d-th largest
	s.scratch = buf[:0]
	return uint64(kth)<<40 | uint64(min(sum, 1<<24-1))<<16 | uint64(s.sTie[st])
}

// less orders stripes by key, then index.
func (s *Scheduler) less(a, b int32) bool {
	ka, kb := s.sKey[a], s.sKey[b]
	return ka < kb || ka == kb && a < b
}

// search returns the position of st in order, or where it would go, using
// its current key.
func (s *Scheduler) search(st int32) int {
	i, _ := slices.BinarySearchFunc(s.order, st, func(e, t int32) int {
		switch {
		case e == t:
			return 0
		case s.less(e, t):
			return -1
		}
		return 1
	})
	return i
}

// rekey recomputes the key of st and moves it to its place in order.
func (s *Scheduler) rekey(st int) {
	k := s.stripeKey(st)
	if k == s.sKey[st] {
		return
	}
	if s.dirty || s.sComplete.has(st) {
		s.sKey[st] = k
		return
	}
	i := s.search(int32(st))
	s.order = slices.Delete(s.order, i, i+1)
	s.sKey[st] = k
	j := s.search(int32(st))
	s.order = slices.Insert(s.order, j, int32(st))
}

// rekeyAll recomputes every key; order is sorted before its next use.
func (s *Scheduler) rekeyAll() {
	for _, st := range s.order {
		s.sKey[st] = s.stripeKey(int(st))
	}
	s.dirty = true
}

// sortOrder sorts order if keys changed in bulk.
func (s *Scheduler) sortOrder() {
	if !s.dirty {
		return
	}
	slices.SortFunc(s.order, func(a, b int32) int {
		switch {
		case s.less(a, b):
			return -1
		case a == b:
			return 0
		}
		return 1
	})
	s.dirty = false
}

// orderRemove takes a completed stripe out of order.
func (s *Scheduler) orderRemove(st int) {
	if s.dirty {
		if i := slices.Index(s.order, int32(st)); i >= 0 {
			s.order = slices.Delete(s.order, i, i+1)
		}
		return
	}
	i := s.search(int32(st))
	if i < len(s.order) && s.order[i] == int32(st) {
		s.order = slices.Delete(s.order, i, i+1)
	}
}

func trailingZeros8(b byte) int    { return bits.TrailingZeros8(b) }
func trailingZeros64(w uint64) int { return bits.TrailingZeros64(w) }
