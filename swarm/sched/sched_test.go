package sched

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func pid(i byte) PeerID { return PeerID{i, 0xAA} }

// bitmap encodes chunks as a wire bitmap for n chunks.
func bitmap(n int, chunks ...int) []byte {
	b := make([]byte, (n+7)/8)
	for _, c := range chunks {
		b[c/8] |= 1 << (c % 8)
	}
	return b
}

func fullBitmap(n int) []byte {
	b := make([]byte, (n+7)/8)
	for c := range n {
		b[c/8] |= 1 << (c % 8)
	}
	return b
}

func mustNew(t testing.TB, l Layout, resume []byte, cfg Config, seed uint64) *Scheduler {
	t.Helper()
	s, err := New(l, resume, cfg, rand.New(rand.NewPCG(seed, 7)))
	if err != nil {
		t.Fatalf("New(%+v): %v", l, err)
	}
	return s
}

// take returns the actions of kind k (any kind if k is 0) from s.Ready,
// after checking the internal invariants.
func take(t testing.TB, s *Scheduler, k Kind) []Action {
	t.Helper()
	if err := checkInternal(s); err != nil {
		t.Fatalf("invariant: %v", err)
	}
	acts, _ := s.Ready(nil)
	var out []Action
	for _, a := range acts {
		if k == 0 || a.Kind == k {
			out = append(out, a)
		}
	}
	return out
}

func chunksOf(acts []Action) []int {
	var cs []int
	for _, a := range acts {
		cs = append(cs, a.Chunk)
	}
	return cs
}

func TestRarestFirst(t *testing.T) {
	// Four stripes of two data chunks. B holds stripes 0, 1 and 3, C holds
	// 0 and 1, A holds everything: stripe 2 is rarest (A only), then 3.
	l := Layout{Size: 8 << 10, ChunkSize: 1 << 10, K: 2}
	n := l.Chunks()
	s := mustNew(t, l, nil, Config{InitialQueue: 1, MaxQueue: 1}, 1)
	s.PeerJoined(epoch, pid(2), bitmap(n, 0, 1, 2, 3, 6, 7))
	s.PeerJoined(epoch, pid(3), bitmap(n, 0, 1, 2, 3))
	take(t, s, 0)
	s2 := mustNew(t, l, nil, Config{InitialQueue: 3, MaxQueue: 3}, 1)
	s2.PeerJoined(epoch, pid(2), nil)
	s2.PeerJoined(epoch, pid(3), nil)
	for _, c := range []int{0, 1, 2, 3, 6, 7} {
		s2.Have(epoch, pid(2), c)
	}
	for _, c := range []int{0, 1, 2, 3} {
		s2.Have(epoch, pid(3), c)
	}
	before := take(t, s2, Request)
	s2.PeerJoined(epoch, pid(1), fullBitmap(n))
	got := chunksOf(take(t, s2, Request))
	if len(got) != 3 {
		t.Fatalf("A got %d requests (%v), want 3", len(got), got)
	}
	// A's first two requests are stripe 2, the only stripe nobody else has
	// (in either order: equally announced chunks go by a random tie-break).
	if first := slices.Sorted(slices.Values(got[:2])); !slices.Equal(first, []int{4, 5}) {
		t.Errorf("A's first requests %v, want stripe 2's chunks [4 5] (others asked for %v)", got[:2], chunksOf(before))
	}
	// The third goes to stripe 3 (two holders) unless B already covers it.
	if c := got[2]; c != 6 && c != 7 && !slices.Contains(chunksOf(before), 6) && !slices.Contains(chunksOf(before), 7) {
		t.Errorf("A's third request %d, want stripe 3 (chunk 6 or 7)", c)
	}
}

func TestRarestTieBreakIsRandom(t *testing.T) {
	l := Layout{Size: 64 << 10, ChunkSize: 1 << 10, K: 1} // 64 equally rare stripes
	first := map[int]bool{}
	for seed := range uint64(20) {
		s := mustNew(t, l, nil, Config{InitialQueue: 1}, seed)
		s.PeerJoined(epoch, pid(1), fullBitmap(l.Chunks()))
		reqs := take(t, s, Request)
		if len(reqs) != 1 {
			t.Fatalf("seed %d: %d requests, want 1", seed, len(reqs))
		}
		first[reqs[0].Chunk] = true
	}
	if len(first) < 8 {
		t.Errorf("20 seeds chose only %d distinct first stripes among 64, want random tie-breaks", len(first))
	}
}

func TestSlowPeerQueueOfOne(t *testing.T) {
	l := Layout{Size: 1000 << 16, ChunkSize: 1 << 16, K: 4}
	n := l.Chunks()
	slow := &simPeer{id: pid(1), rate: 16 << 10, lat: 20 * time.Millisecond, holds: all(n)} // 4 s a chunk
	fast := &simPeer{id: pid(2), rate: 1 << 20, lat: 20 * time.Millisecond, holds: all(n)}  // 64 ms a chunk
	w := fixedWorld(t, l, Config{}, nil, []*simPeer{slow, fast})
	for w.now.Sub(epoch) < 40*time.Second && w.step() {
	}
	pr := w.s.Progress()
	var ps, pf PeerProgress
	for _, p := range pr.Peers {
		switch p.Peer {
		case slow.id:
			ps = p
		case fast.id:
			pf = p
		}
	}
	// The chunk in transfer and the next one: its latency (4 s) is one
	// chunk's transfer, and QueueTime holds less than a chunk more.
	if ps.Queue > 2 {
		t.Errorf("slow peer (%.0f B/s measured) has queue %d, want at most 2", ps.Rate, ps.Queue)
	}
	if pf.Queue <= 4 {
		t.Errorf("fast peer (%.0f B/s measured) has queue %d, want more than 4", pf.Rate, pf.Queue)
	}
	if ps.Rate < 8<<10 || ps.Rate > 32<<10 {
		t.Errorf("slow peer rate measured %.0f B/s, true rate %d", ps.Rate, 16<<10)
	}
}

// TestLongRoundTripFillsLink: a peer behind a long round trip gets a queue
// that covers it (the queue target counts the peer's shortest latency), so
// its measured rate reaches its link's, not one chunk per round trip.
func TestLongRoundTripFillsLink(t *testing.T) {
	l := Layout{Size: 2000 << 16, ChunkSize: 1 << 16, K: 4}
	n := l.Chunks()
	far := &simPeer{id: pid(1), rate: 4 << 20, lat: 300 * time.Millisecond, holds: all(n)} // 16 ms a chunk, 600 ms round trip
	w := fixedWorld(t, l, Config{}, nil, []*simPeer{far})
	for w.now.Sub(epoch) < 20*time.Second && w.step() {
	}
	pr := w.s.Progress()
	if len(pr.Peers) != 1 {
		t.Fatalf("%d peers in progress, want 1", len(pr.Peers))
	}
	p := pr.Peers[0]
	// One chunk per round trip would be 64 KiB / 0.6 s, about 107 KiB/s.
	if p.Rate < 2<<20 {
		t.Errorf("far peer measured at %.0f B/s with queue %d, want at least half its link (%d B/s)", p.Rate, p.Queue, 4<<20)
	}
	if want := 600 * time.Millisecond * (4 << 20) / time.Second / (1 << 16); p.Queue < int(want) {
		t.Errorf("far peer's queue %d, want at least the round trip's worth, %d", p.Queue, want)
	}
}

func TestEndgameDuplicatesAndCancels(t *testing.T) {
	// No parity, so the endgame can only duplicate. The slow peer gets two
	// requests first; the fast one does the rest, then duplicates them.
	l := Layout{Size: 16 << 10, ChunkSize: 1 << 10, K: 4}
	n := l.Chunks()
	s := mustNew(t, l, nil, Config{InitialQueue: 2}, 3)
	s.PeerJoined(epoch, pid(1), fullBitmap(n))
	slowReqs := chunksOf(take(t, s, Request))
	if len(slowReqs) != 2 {
		t.Fatalf("slow peer got %v, want 2 requests", slowReqs)
	}
	now := epoch.Add(time.Millisecond)
	s.PeerJoined(now, pid(2), fullBitmap(n))
	var queue []int // fast peer's outstanding requests, FIFO
	queue = append(queue, chunksOf(take(t, s, Request))...)
	dups := map[int]bool{}
	for len(queue) > 0 && !s.Done() {
		c := queue[0]
		queue = queue[1:]
		now = now.Add(time.Millisecond)
		s.ChunkOK(now, pid(2), c, 1<<10, time.Millisecond)
		for _, a := range take(t, s, 0) {
			switch {
			case a.Kind == Request && a.Peer == pid(2):
				if slices.Contains(slowReqs, a.Chunk) {
					dups[a.Chunk] = true
				}
				queue = append(queue, a.Chunk)
			case a.Kind == Request:
				t.Fatalf("unexpected %v", a)
			case a.Kind == Cancel:
				if a.Peer != pid(1) || !slices.Contains(slowReqs, a.Chunk) || a.Chunk != c {
					t.Errorf("after chunk %d arrived: %v, want a cancel of the slow peer's duplicate", c, a)
				}
				delete(dups, a.Chunk)
				slowReqs = slices.DeleteFunc(slowReqs, func(x int) bool { return x == a.Chunk })
			}
		}
	}
	if !s.Done() {
		t.Fatalf("not done: %v", s)
	}
	if len(slowReqs) != 0 {
		t.Errorf("slow peer's requests %v were never cancelled", slowReqs)
	}
	if len(dups) != 0 {
		t.Errorf("duplicated chunks %v had no cancel", dups)
	}
}

func TestParityRoutesAroundMissingData(t *testing.T) {
	l := Layout{Size: 4 << 10, ChunkSize: 1 << 10, K: 4, M: 2} // chunks 0-3 data, 4-5 parity
	n := l.Chunks()
	cases := []struct {
		name   string
		others []*simPeer
	}{
		{"nobody has chunk 3", nil},
		{"only a busy peer has chunk 3", []*simPeer{{id: pid(9), rate: 1 << 20, holds: holding(n, 3), busy: 1}}},
		{"only a stalled peer has chunk 3", []*simPeer{{id: pid(9), rate: 1 << 20, holds: holding(n, 3), stall: true}}},
		{"only a very slow peer has chunk 3", []*simPeer{{id: pid(9), rate: 10, holds: holding(n, 3)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fast := &simPeer{id: pid(1), rate: 1 << 20, holds: holding(n, 0, 1, 2, 4, 5), join: time.Millisecond}
			w := fixedWorld(t, l, Config{}, nil, append(tc.others, fast))
			w.run(10_000)
			if !w.doneSeen {
				t.Fatalf("not done: %v", w.s)
			}
			parity, decode := 0, false
			for _, a := range w.history {
				if a.Kind == Request && a.Peer == fast.id && l.IsParity(a.Chunk) {
					parity++
				}
				decode = decode || a.Kind == DecodeStripe && a.Stripe == 0
			}
			if parity != 1 {
				t.Errorf("fast peer got %d parity requests, want exactly 1: %v", parity, w.history)
			}
			if !decode {
				t.Errorf("no DecodeStripe(0) for the missing data chunk: %v", w.history)
			}
			if w.now.Sub(epoch) > 2*time.Second {
				t.Errorf("took %v of virtual time, want the parity route to be quick", w.now.Sub(epoch))
			}
		})
	}
}

func TestDataPreferred(t *testing.T) {
	l := Layout{Size: 1000 << 10, ChunkSize: 1 << 10, K: 8, M: 4}
	n := l.Chunks()
	w := fixedWorld(t, l, Config{}, nil, []*simPeer{
		{id: pid(1), rate: 1 << 20, holds: all(n)},
		{id: pid(2), rate: 3 << 20, holds: all(n)},
	})
	w.run(100_000)
	if !w.doneSeen {
		t.Fatalf("not done: %v", w.s)
	}
	for _, a := range w.history {
		if a.Kind == Request && l.IsParity(a.Chunk) {
			t.Errorf("%v: parity requested while full peers hold all data", a)
		}
		if a.Kind == DecodeStripe {
			t.Errorf("%v with full peers", a)
		}
	}
}

func TestResumeRequestsOnlyMissing(t *testing.T) {
	l := Layout{Size: 12 << 10, ChunkSize: 1 << 10, K: 4, M: 2} // 3 stripes of 6
	n := l.Chunks()
	// Stripe 0: two data chunks verified. Stripe 1 complete with data 6, 7,
	// 8 and parity 10 (chunk 9 to decode). Stripe 2: parity 16 verified.
	resume := bitmap(n, 0, 1, 6, 7, 8, 10, 16)
	s := mustNew(t, l, resume, Config{}, 1)
	acts := take(t, s, 0)
	if !slices.Equal(acts, []Action{{Kind: DecodeStripe, Chunk: -1, Stripe: 1}}) {
		t.Fatalf("after New: %v, want DecodeStripe(1) only", acts)
	}
	w := fixedWorld(t, l, Config{}, resume, []*simPeer{{id: pid(1), rate: 1 << 20, holds: all(n)}})
	w.run(10_000)
	if !w.doneSeen {
		t.Fatalf("not done: %v", w.s)
	}
	var got []int
	for _, a := range w.history {
		if a.Kind == Request {
			got = append(got, a.Chunk)
		}
	}
	slices.Sort(got)
	// Stripe 0 needs data 2 and 3; stripe 2 needs three of its data chunks
	// (parity 16 verified): the least-announced-first order picks 12, 13, 14.
	if want := []int{2, 3, 12, 13, 14}; !slices.Equal(got, want) {
		t.Errorf("requested %v, want %v", got, want)
	}
	if p := w.s.Progress(); p.VerifiedBytes != 10<<10 || p.RecoverableBytes != 12<<10 {
		t.Errorf("progress verified %d recoverable %d, want %d and %d", p.VerifiedBytes, p.RecoverableBytes, 10<<10, 12<<10)
	}
}

func TestResumeComplete(t *testing.T) {
	cases := []struct {
		name   string
		lay    Layout
		resume []int
		want   []Action
	}{
		{"empty content", Layout{Size: 0, ChunkSize: 1024, K: 4, M: 2}, nil, []Action{{Kind: Done, Chunk: -1, Stripe: -1}}},
		{"all data", Layout{Size: 2048, ChunkSize: 1024, K: 4, M: 2}, []int{0, 1}, []Action{{Kind: Done, Chunk: -1, Stripe: -1}}},
		{"needs decode", Layout{Size: 2048, ChunkSize: 1024, K: 4, M: 2}, []int{0, 2}, []Action{
			{Kind: DecodeStripe, Chunk: -1, Stripe: 0}, {Kind: Done, Chunk: -1, Stripe: -1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, tc.lay, bitmap(tc.lay.Chunks(), tc.resume...), Config{}, 1)
			if got := take(t, s, 0); !slices.Equal(got, tc.want) {
				t.Errorf("actions %v, want %v", got, tc.want)
			}
			s.PeerJoined(epoch, pid(1), fullBitmap(tc.lay.Chunks()))
			if got := take(t, s, 0); len(got) != 0 {
				t.Errorf("after Done a joining peer got %v, want nothing", got)
			}
		})
	}
}

func TestNoPeersWaits(t *testing.T) {
	l := Layout{Size: 40 << 10, ChunkSize: 1 << 10, K: 4, M: 1}
	n := l.Chunks()
	s := mustNew(t, l, nil, Config{}, 1)
	if acts, dl := s.Ready(nil); len(acts) != 0 || !dl.IsZero() {
		t.Fatalf("no peers: actions %v deadline %v, want none", acts, dl)
	}
	s.Tick(epoch.Add(time.Hour))
	// A peer comes, gets requests, delivers one chunk and leaves.
	now := epoch.Add(time.Hour)
	s.PeerJoined(now, pid(1), fullBitmap(n))
	reqs := take(t, s, Request)
	if len(reqs) == 0 {
		t.Fatal("joining peer got no requests")
	}
	s.ChunkOK(now.Add(time.Second), pid(1), reqs[0].Chunk, 1<<10, time.Second)
	take(t, s, 0)
	s.PeerLeft(now.Add(2*time.Second), pid(1))
	if acts, dl := s.Ready(nil); len(acts) != 0 || !dl.IsZero() {
		t.Fatalf("after the only peer left: actions %v deadline %v, want none", acts, dl)
	}
	s.Tick(now.Add(24 * time.Hour))
	if got := take(t, s, 0); len(got) != 0 || s.Done() {
		t.Fatalf("waiting alone produced %v (done %v)", got, s.Done())
	}
	// Another peer resumes the download from where it stopped.
	now = now.Add(24 * time.Hour)
	s.PeerJoined(now, pid(2), fullBitmap(n))
	queue := chunksOf(take(t, s, Request))
	if slices.Contains(queue, reqs[0].Chunk) {
		t.Errorf("chunk %d requested again after it was verified", reqs[0].Chunk)
	}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		now = now.Add(10 * time.Millisecond)
		s.ChunkOK(now, pid(2), c, 1<<10, 10*time.Millisecond)
		queue = append(queue, chunksOf(take(t, s, Request))...)
	}
	if !s.Done() {
		t.Errorf("second peer did not finish the download: %v", s)
	}
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func TestEndgameWhenRestIsUnavailable(t *testing.T) {
	// Stripe 0 (chunks 0, 1) is held by nobody, so the download cannot
	// finish, but stripe 1's requests stuck at a slow peer are still
	// duplicated to an idle fast peer.
	l := Layout{Size: 4 << 10, ChunkSize: 1 << 10, K: 2}
	n := l.Chunks()
	s := mustNew(t, l, nil, Config{InitialQueue: 2}, 1)
	s.PeerJoined(epoch, pid(1), bitmap(n, 2, 3))
	if got := chunksOf(take(t, s, Request)); len(got) != 2 {
		t.Fatalf("slow peer got %v, want chunks 2 and 3", got)
	}
	s.PeerJoined(epoch.Add(time.Second), pid(2), bitmap(n, 2, 3))
	got := chunksOf(take(t, s, Request))
	slices.Sort(got)
	if !slices.Equal(got, []int{2, 3}) {
		t.Errorf("idle fast peer got %v, want duplicates of [2 3]", got)
	}
	if !s.Progress().Endgame {
		t.Errorf("progress does not report the endgame")
	}
}
