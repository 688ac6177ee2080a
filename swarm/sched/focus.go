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

// Focus replaces the focused stripes: the stripes readers need, most urgent
// first. A peer with room takes a chunk of the first focused stripe that
// needs one and where the peer has a data chunk nobody fetches, or else a
// parity chunk of that stripe (decoding serves the reader as well), before
// anything else. The first urgent entries are stripes a reader is blocked
// on: if one of them needs a request that no peer has room for, requests in
// stripes that are not focused are cancelled to make room (FetchAll only
// has such requests). Out-of-range, complete and repeated stripes are
// skipped; at most MaxFocus are kept.
func (s *Scheduler) Focus(now time.Time, stripes []int, urgent int) {
	s.advance(now)
	for _, st := range s.focus {
		s.focused.clear(int(st))
	}
	s.focus = s.focus[:0]
	s.nurgent = 0
	for i, st := range stripes {
		if len(s.focus) == MaxFocus {
			break
		}
		if st < 0 || st >= s.nstripes || s.focused.has(st) || s.sComplete.has(st) {
			continue
		}
		s.focused.set(st)
		s.focus = append(s.focus, int32(st))
		if i < urgent {
			s.nurgent++
		}
	}
	s.workGen++ // idle peers may have work in a newly focused stripe
	s.fill(now)
	s.preempt(now)
}

// Focused returns the focused stripes, most urgent first (complete ones
// included until the next Focus). The slice is the scheduler's; do not keep it.
func (s *Scheduler) Focused() []int32 { return s.focus }

// pickFocus returns a chunk of a focused stripe for p, or -1.
func (s *Scheduler) pickFocus(p *peer) int {
	for _, st32 := range s.focus {
		st := int(st32)
		if s.need(st) == 0 {
			continue
		}
		start, d := s.lay.StripeStart(st), s.dataIn(st)
		if c := s.candidate(p, start, start+d); c >= 0 {
			return c
		}
		if s.lay.M > 0 {
			if c := s.candidate(p, start+d, start+d+s.lay.M); c >= 0 {
				return c
			}
		}
	}
	return -1
}

// preempt cancels the requests in unfocused stripes when an urgent stripe
// still needs requests after fill, so that the freed capacity goes to it.
func (s *Scheduler) preempt(now time.Time) {
	if s.mode == FetchNone || s.nreqs == 0 {
		return
	}
	blocked := false
	for _, st := range s.focus[:s.nurgent] {
		if s.need(int(st)) > 0 {
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
