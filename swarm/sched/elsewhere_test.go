package sched

import (
	"slices"
	"testing"
	"time"
)

// A chunk a seeder asked us to fetch elsewhere is fetched from a peer that
// announces it; if none does within ElsewhereWait, or a request there
// fails, the seeder is asked again.
func TestElsewhere(t *testing.T) {
	l := Layout{Size: 4 * 1024, ChunkSize: 1024, K: 4, M: 0}
	n := l.Chunks()
	t0 := time.Unix(1000, 0)
	seeder, other := pid(1), pid(2)
	requested := func(s *Scheduler, p PeerID) []int {
		t.Helper()
		var cs []int
		for _, a := range take(t, s, Request) {
			if a.Peer == p {
				cs = append(cs, a.Chunk)
			}
		}
		slices.Sort(cs)
		return cs
	}
	// deferred returns a scheduler whose seeder refused its first chunk
	// (Elsewhere), and that chunk.
	deferred := func(t *testing.T) (*Scheduler, int) {
		t.Helper()
		s := mustNew(t, l, nil, Config{InitialQueue: 8}, 1)
		s.PeerJoined(t0, seeder, fullBitmap(n))
		c := requested(s, seeder)[0]
		s.RequestFailed(t0, seeder, c, Elsewhere)
		take(t, s, 0)
		return s, c
	}

	t.Run("nobody else announces it", func(t *testing.T) {
		s := mustNew(t, l, nil, Config{InitialQueue: 8}, 1)
		s.PeerJoined(t0, seeder, fullBitmap(n))
		first := requested(s, seeder)
		if len(first) == 0 {
			t.Fatal("no request to the seeder")
		}
		c := first[0]
		s.RequestFailed(t0, seeder, c, Elsewhere)
		if slices.Contains(requested(s, seeder), c) {
			t.Fatalf("chunk %d asked of the seeder again at once", c)
		}
		_, due := s.Ready(nil)
		if due.IsZero() || due.After(t0.Add(DefaultElsewhereWait)) {
			t.Fatalf("next deadline %v, want by the end of ElsewhereWait %v", due, t0.Add(DefaultElsewhereWait))
		}
		s.Tick(t0.Add(DefaultElsewhereWait))
		if !slices.Contains(requested(s, seeder), c) {
			t.Fatalf("chunk %d not asked of the seeder again after ElsewhereWait", c)
		}
	})

	t.Run("another peer announces it and fails", func(t *testing.T) {
		s, c := deferred(t)
		s.PeerJoined(t0, other, bitmap(n, c))
		if got := requested(s, other); !slices.Equal(got, []int{c}) {
			t.Fatalf("requests to the peer that announced chunk %d: %v", c, got)
		}
		s.Tick(t0.Add(DefaultElsewhereWait)) // the other peer still holds it: wait for it
		if slices.Contains(requested(s, seeder), c) {
			t.Fatalf("chunk %d asked of the seeder while another peer serves it", c)
		}
		s.RequestFailed(t0.Add(DefaultElsewhereWait), other, c, NotFound)
		if !slices.Contains(requested(s, seeder), c) {
			t.Fatalf("chunk %d not asked of the seeder again after the other peer failed", c)
		}
	})

	t.Run("the other peer leaves", func(t *testing.T) {
		s, c := deferred(t)
		s.PeerJoined(t0, other, bitmap(n, c))
		take(t, s, 0)
		s.PeerLeft(t0, other)
		if !slices.Contains(requested(s, seeder), c) {
			t.Fatalf("chunk %d not asked of the seeder again after the only other holder left", c)
		}
	})
}
