package sched

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// checkFocus recomputes the focus state: every focused stripe is in range,
// listed once and marked in the bitset, and nothing else is marked.
func checkFocus(s *Scheduler) error {
	if len(s.focus) > MaxFocus {
		return fmt.Errorf("focus holds %d stripes, cap %d", len(s.focus), MaxFocus)
	}
	if s.nurgent < 0 || s.nurgent > len(s.focus) {
		return fmt.Errorf("%d urgent of %d focused stripes", s.nurgent, len(s.focus))
	}
	marked := newBitset(s.nstripes)
	for _, f := range s.focus {
		st := int(f.stripe)
		if st < 0 || st >= s.nstripes {
			return fmt.Errorf("focused stripe %d out of range", st)
		}
		if marked.has(st) {
			return fmt.Errorf("stripe %d focused twice", st)
		}
		marked.set(st)
		start := s.lay.StripeStart(st)
		if f.first < int32(start) || f.last < f.first || f.last >= int32(start+s.lay.StripeData(st)) {
			return fmt.Errorf("stripe %d wants chunks %d..%d outside its data chunks %d..%d", st, f.first, f.last, start, start+s.lay.StripeData(st)-1)
		}
	}
	if !slices.Equal(marked, s.focused) {
		return fmt.Errorf("focus bitset %v, list %v", s.focused, s.focus)
	}
	if s.mode > FetchNone {
		return fmt.Errorf("mode %d", s.mode)
	}
	return nil
}

// planFocus schedules focus and mode changes in half of the worlds: random
// focus lists (some urgent), FetchFocused and FetchNone phases, and a last
// change back to FetchAll so that coverable worlds still finish.
func (w *world) planFocus(seed uint64) {
	w.frng = rand.New(rand.NewPCG(seed, 0xf0c5))
	if w.frng.IntN(2) == 0 {
		return
	}
	n := 1 + w.frng.IntN(8)
	var last time.Duration
	for range n {
		last += time.Duration(w.frng.IntN(1500)) * time.Millisecond
		w.push(simEvent{at: epoch.Add(last), kind: evFocus, peer: -1, chunk: 1})
	}
	w.push(simEvent{at: epoch.Add(last + time.Millisecond), kind: evFocus, peer: -1, chunk: 0})
}

// focusStep applies one planned focus event: chunk 0 ends the plan
// (FetchAll), others draw a focus list and a mode.
func (w *world) focusStep() {
	ns, n := w.lay.Stripes(), w.lay.Chunks()
	var list []Want
	for range w.frng.IntN(6) { // anything, bad entries too
		a, b := w.frng.IntN(n+2)-1, w.frng.IntN(n+2)-1
		list = append(list, Want{a, a + b%8})
	}
	if w.frng.IntN(3) == 0 && ns > 0 { // a reader's window
		for st := w.frng.IntN(ns); st < ns && len(list) < 10; st++ {
			start, d := w.lay.StripeStart(st), w.lay.StripeData(st)
			lo := start + w.frng.IntN(d)
			list = append(list, Want{lo, lo + w.frng.IntN(start+d-lo)})
		}
	}
	urgent := w.frng.IntN(3)
	mode := Mode(w.frng.IntN(3))
	if w.lastFocus() {
		mode = FetchAll
	}
	// Each change is drained on its own: the checks compare requests with
	// the mode and focus in force when they were issued.
	w.s.SetMode(w.now, mode)
	w.drain()
	w.s.Focus(w.now, list, urgent)
}

// lastFocus reports whether no focus event is left in the queue.
func (w *world) lastFocus() bool {
	for _, e := range w.q {
		if e.kind == evFocus {
			return false
		}
	}
	return true
}

// checkFocusRequest checks a Request against the mode: none while paused,
// only focused stripes in FetchFocused.
func (w *world) checkFocusRequest(a Action) {
	st, _ := w.lay.StripeOf(a.Chunk)
	switch w.s.mode {
	case FetchNone:
		w.fail("request %v while paused", a)
	case FetchFocused:
		if !w.s.focused.has(st) {
			w.fail("request %v in unfocused stripe %d in FetchFocused", a, st)
		}
	}
}

func focusWorld(t *testing.T, cfg Config) (*Scheduler, Layout) {
	l := Layout{Size: 64 * 1024, ChunkSize: 1024, K: 4, M: 2} // 16 stripes
	s := mustNew(t, l, nil, cfg, 1)
	take(t, s, 0)
	return s, l
}

func TestFocusFirst(t *testing.T) {
	s, l := focusWorld(t, Config{InitialQueue: 2, MaxQueue: 2})
	s.Focus(epoch, wholeStripes(l, 13), 1)
	s.PeerJoined(epoch, pid(1), fullBitmap(l.Chunks()))
	got := chunksOf(take(t, s, Request))
	for _, c := range got {
		if st, _ := l.StripeOf(c); st != 13 {
			t.Fatalf("requests %v; want the focused stripe 13 first", got)
		}
		if l.IsParity(c) {
			t.Fatalf("requests %v: parity while data chunks of the stripe are free", got)
		}
	}
}

func TestFocusParityRoutesAround(t *testing.T) {
	s, l := focusWorld(t, Config{InitialQueue: 6, MaxQueue: 6})
	start := l.StripeStart(5)
	var have []int
	for c := range l.Chunks() {
		if c != start { // nobody has the stripe's first data chunk
			have = append(have, c)
		}
	}
	s.Focus(epoch, wholeStripes(l, 5), 1)
	s.PeerJoined(epoch, pid(1), bitmap(l.Chunks(), have...))
	got := chunksOf(take(t, s, Request))
	want := []int{start + 1, start + 2, start + 3, start + 4} // 3 data, 1 parity
	if len(got) < 4 || !slices.Equal(slices.Sorted(slices.Values(got[:4])), want) {
		t.Fatalf("requests %v; want %v first (parity replaces the missing data chunk)", got, want)
	}
}

func TestFetchFocusedOnly(t *testing.T) {
	s, l := focusWorld(t, Config{InitialQueue: 8, MaxQueue: 8})
	s.SetMode(epoch, FetchFocused)
	s.PeerJoined(epoch, pid(1), fullBitmap(l.Chunks()))
	if got := take(t, s, Request); len(got) != 0 {
		t.Fatalf("FetchFocused with no focus requested %v", got)
	}
	s.Focus(epoch, wholeStripes(l, 2), 0)
	got := chunksOf(take(t, s, Request))
	if len(got) != 4 {
		t.Fatalf("requests %v; want the 4 data chunks of stripe 2", got)
	}
	now := epoch.Add(10 * time.Millisecond)
	for _, c := range got {
		s.ChunkOK(now, pid(1), c, 1024, time.Millisecond)
	}
	acts := take(t, s, 0)
	for _, a := range acts {
		if a.Kind == Request || a.Kind == Done {
			t.Fatalf("after the focused stripe completed: %v", acts)
		}
	}
	if !s.StripeComplete(2) || s.Done() {
		t.Fatalf("stripe 2 complete %v, done %v", s.StripeComplete(2), s.Done())
	}
}

func TestFetchNonePauses(t *testing.T) {
	s, l := focusWorld(t, Config{InitialQueue: 2, MaxQueue: 2})
	s.SetMode(epoch, FetchNone)
	s.PeerJoined(epoch, pid(1), fullBitmap(l.Chunks()))
	s.Focus(epoch, wholeStripes(l, 3), 1)
	if got := take(t, s, Request); len(got) != 0 {
		t.Fatalf("paused scheduler requested %v", got)
	}
	s.SetMode(epoch, FetchAll)
	if got := take(t, s, Request); len(got) != 2 {
		t.Fatalf("resumed scheduler requested %v; want 2 (the queue)", got)
	}
}

func TestUrgentFocusPreempts(t *testing.T) {
	s, l := focusWorld(t, Config{InitialQueue: 2, MaxQueue: 2})
	s.PeerJoined(epoch, pid(1), fullBitmap(l.Chunks()))
	first := chunksOf(take(t, s, Request))
	if len(first) != 2 {
		t.Fatalf("requests %v; want 2", first)
	}
	st0, _ := l.StripeOf(first[0])
	target := (st0 + 7) % l.Stripes()
	// Not urgent: the background requests stay.
	s.Focus(epoch, wholeStripes(l, target), 0)
	if acts := take(t, s, 0); len(acts) != 0 {
		t.Fatalf("a non-urgent focus with a full queue acted: %v", acts)
	}
	// Urgent: they are cancelled and the queue goes to the focused stripe.
	s.Focus(epoch, wholeStripes(l, target), 1)
	acts := take(t, s, 0)
	var cancels, reqs []int
	for _, a := range acts {
		switch a.Kind {
		case Cancel:
			cancels = append(cancels, a.Chunk)
		case Request:
			if st, _ := l.StripeOf(a.Chunk); st != target {
				t.Fatalf("request %v outside the urgent stripe %d", a, target)
			}
			reqs = append(reqs, a.Chunk)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(cancels)), slices.Sorted(slices.Values(first))) || len(reqs) != 2 {
		t.Fatalf("cancels %v (want %v), requests %v (want 2 in stripe %d)", cancels, first, reqs, target)
	}
}

func wholeStripes(l Layout, sts ...int) []Want {
	var w []Want
	for _, st := range sts {
		start := l.StripeStart(st)
		w = append(w, Want{start, start + l.StripeData(st) - 1})
	}
	return w
}

func TestFocusSkipsBadEntries(t *testing.T) {
	s, l := focusWorld(t, Config{})
	list := []Want{{-1, 2}, {3, 3}, {5, 4}, {0, 6}, {3, 4}, {l.Chunks(), l.Chunks()}, {4, 4} /* parity */}
	list = append(list, wholeStripes(l, 3, 3)...)
	for i := range MaxFocus + 30 {
		list = append(list, wholeStripes(l, i%16)...)
	}
	s.Focus(epoch, list, 2)
	if err := checkFocus(s); err != nil {
		t.Fatal(err)
	}
	if got := s.Focused(); len(got) != 16 || got[0] != 0 || got[1] != 3 || s.nurgent != 1 {
		t.Fatalf("focus %v, %d urgent; want 16 stripes from 0 (urgent), 3", got, s.nurgent)
	}
	if f := s.focus[0]; f.first != 0 || f.last != 3 {
		t.Fatalf("stripe 0 wants %d..%d, want 0..3 (3..3 merged with the whole stripe)", f.first, f.last)
	}
}

// A reader of some chunks of a stripe fetches those only: no parity, no
// other data chunk, unless a wanted chunk is nowhere to be had.
func TestFocusWantsOnlyItsChunks(t *testing.T) {
	s, l := focusWorld(t, Config{InitialQueue: 8, MaxQueue: 8})
	s.SetMode(epoch, FetchFocused)
	s.PeerJoined(epoch, pid(1), fullBitmap(l.Chunks()))
	start := l.StripeStart(7)
	s.Focus(epoch, []Want{{start + 1, start + 2}}, 1)
	got := slices.Sorted(slices.Values(chunksOf(take(t, s, Request))))
	if !slices.Equal(got, []int{start + 1, start + 2}) {
		t.Fatalf("requests %v; want only the wanted chunks %d, %d", got, start+1, start+2)
	}
	// Nobody has a wanted chunk: the stripe is completed another way.
	s2, _ := focusWorld(t, Config{InitialQueue: 8, MaxQueue: 8})
	s2.SetMode(epoch, FetchFocused)
	var have []int
	for c := range l.Chunks() {
		if c != start+1 {
			have = append(have, c)
		}
	}
	s2.PeerJoined(epoch, pid(1), bitmap(l.Chunks(), have...))
	s2.Focus(epoch, []Want{{start + 1, start + 2}}, 1)
	got = chunksOf(take(t, s2, Request))
	if len(got) != 4 || !slices.Contains(got, start+4) || slices.Contains(got, start+1) {
		t.Fatalf("requests %v; want 4 chunks of stripe 7 without %d, parity %d among them", got, start+1, start+4)
	}
}
