package sched

import "time"

// Mode says which stripes the scheduler fetches.
type Mode uint8

const (
	// FetchAll fetches focused stripes first, then every other stripe
	// rarest first: a whole download that readers may steer. The default.
	FetchAll Mode = iota
	// FetchFocused fetches focused stripes only: an on-demand or selective
	// download that holds no more than its readers asked for. Done comes
	// only if every stripe was focused at some point.
	FetchFocused
	// FetchNone issues no new requests (a paused download); outstanding
	// ones end as usual.
	FetchNone
)

func (m Mode) String() string {
	switch m {
	case FetchAll:
		return "all"
	case FetchFocused:
		return "focused"
	case FetchNone:
		return "none"
	}
	return "mode?"
}

// MaxFocus caps the focused stripes; Focus ignores the rest of a longer
// list.
const MaxFocus = 1024

// Want is a run of data chunks a reader needs, all in one stripe: chunk
// indexes First..Last (inclusive).
type Want struct{ First, Last int }

// SetMode switches what the scheduler fetches from now on. Outstanding
// requests are kept (they end as usual) in every mode.
func (s *Scheduler) SetMode(now time.Time, m Mode) {
	s.advance(now)
	if m == s.mode || m > FetchNone {
		return
	}
	s.mode = m
	s.workGen++
	s.fill(now)
}

// Mode returns the current mode.
func (s *Scheduler) Mode() Mode { return s.mode }

// Focus replaces what readers want, most urgent first: runs of data chunks
// (see Want). A peer with room first takes a wanted data chunk it has that
// nobody fetches, in the first focused stripe where there is one. Only when
// a wanted chunk can be fetched from no connected peer does the stripe take
// any other chunk, parity first (decoding then serves the reader): so a
// reader of one file of a folder fetches no chunk of the other files unless
// it must. The first urgent entries are what blocked readers wait for: if
// one of them still needs a request after every peer with room took one,
// requests in stripes that are not focused are cancelled to make room.
// Entries that are out of range, span stripes or name parity are skipped;
// entries of one stripe merge; at most MaxFocus stripes are kept.
func (s *Scheduler) Focus(now time.Time, wants []Want, urgent int) {
	s.advance(now)
	for _, f := range s.focus {
		s.focused.clear(int(f.stripe))
	}
	s.focus = s.focus[:0]
	s.nurgent = 0
	for i, w := range wants {
		if w.First < 0 || w.Last < w.First || w.Last >= s.nchunks {
			continue
		}
		st, _ := s.lay.StripeOf(w.First)
		st2, pos2 := s.lay.StripeOf(w.Last)
		if st != st2 || pos2 >= s.dataIn(st) || s.sComplete.has(st) {
			continue
		}
		if s.focused.has(st) {
			for j := range s.focus {
				if f := &s.focus[j]; int(f.stripe) == st {
					f.first, f.last = min(f.first, int32(w.First)), max(f.last, int32(w.Last))
					if i < urgent && j >= s.nurgent {
						// now urgent: move it to the end of the urgent prefix
						e := *f
						copy(s.focus[s.nurgent+1:j+1], s.focus[s.nurgent:j])
						s.focus[s.nurgent] = e
						s.nurgent++
					}
					break
				}
			}
			continue
		}
		if len(s.focus) == MaxFocus {
			continue
		}
		s.focused.set(st)
		e := focusEntry{stripe: int32(st), first: int32(w.First), last: int32(w.Last)}
		if i < urgent {
			s.focus = append(s.focus, focusEntry{})
			copy(s.focus[s.nurgent+1:], s.focus[s.nurgent:])
			s.focus[s.nurgent] = e
			s.nurgent++
		} else {
			s.focus = append(s.focus, e)
		}
	}
	s.workGen++ // idle peers may have work in a newly focused stripe
	s.fill(now)
	s.preempt(now)
}

// focusEntry is one focused stripe and the data chunks wanted in it.
type focusEntry struct {
	stripe      int32
	first, last int32 // wanted chunk indexes, inclusive
}

// Focused returns the focused stripes, most urgent first (complete ones
// included until the next Focus).
func (s *Scheduler) Focused() []int {
	out := make([]int, len(s.focus))
	for i, f := range s.focus {
		out[i] = int(f.stripe)
	}
	return out
}

// pickFocus returns a chunk of a focused stripe for p, or -1.
func (s *Scheduler) pickFocus(p *peer) int {
	for _, f := range s.focus {
		st := int(f.stripe)
		if s.sComplete.has(st) {
			continue
		}
		lo, hi := int(f.first), int(f.last)+1
		if c := s.candidate(p, lo, hi); c >= 0 {
			return c
		}
		if s.need(st) == 0 || !s.wantedStuck(lo, hi) {
			continue
		}
		// A wanted chunk nobody connected has: complete the stripe with
		// other chunks, parity first.
		start, d := s.lay.StripeStart(st), s.dataIn(st)
		if s.lay.M > 0 {
			if c := s.candidate(p, start+d, start+d+s.lay.M); c >= 0 {
				return c
			}
		}
		if c := s.candidate(p, start, start+d); c >= 0 {
			return c
		}
	}
	return -1
}

// wantedStuck reports whether a chunk in [lo, hi) is neither verified nor
// requested and no connected peer announces it.
func (s *Scheduler) wantedStuck(lo, hi int) bool {
	for c := lo; c < hi; c++ {
		if !s.verified.has(c) && !s.busy.has(c) && s.avail[c] == 0 {
			return true
		}
	}
	return false
}

// wantedOpen reports whether a wanted chunk of f is neither verified nor
// requested.
func (s *Scheduler) wantedOpen(f focusEntry) bool {
	if s.sComplete.has(int(f.stripe)) {
		return false
	}
	for c := int(f.first); c <= int(f.last); c++ {
		if !s.verified.has(c) && !s.busy.has(c) {
			return true
		}
	}
	return false
}

// preempt cancels the requests in unfocused stripes when an urgent want is
// still open after fill, so that the freed capacity goes to it.
func (s *Scheduler) preempt(now time.Time) {
	if s.mode == FetchNone || s.nreqs == 0 {
		return
	}
	blocked := false
	for _, f := range s.focus[:s.nurgent] {
		if s.wantedOpen(f) {
			blocked = true
			break
		}
	}
	if !blocked {
		return
	}
	cancelled := false
	for _, p := range s.peers {
		for c, ri := range p.reqs {
			if st, _ := s.lay.StripeOf(int(c)); !s.focused.has(st) {
				s.release(ri, true)
				cancelled = true
			}
		}
	}
	if cancelled {
		s.fill(now)
	}
}
