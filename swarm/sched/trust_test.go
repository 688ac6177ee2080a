package sched

import (
	"slices"
	"testing"
	"time"
)

func TestBans(t *testing.T) {
	l := Layout{Size: 64 << 10, ChunkSize: 1 << 10, K: 4, M: 2}
	n := l.Chunks()
	cases := []struct {
		name     string
		outcomes string // per delivered chunk: g good, b bad
		banAt    int    // index of the outcome that bans (-1: never)
	}{
		{"two bad in a row", "bb", 1},
		{"three bad apart", "bgbgb", 4},
		{"one bad", "bggg", -1},
		{"two bad apart", "bgggb", -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, l, nil, Config{InitialQueue: 8, MaxQueue: 8}, 1)
			s.PeerJoined(epoch, pid(1), fullBitmap(n))
			s.PeerJoined(epoch, pid(2), fullBitmap(n))
			var mine []int
			for _, a := range take(t, s, Request) {
				if a.Peer == pid(1) {
					mine = append(mine, a.Chunk)
				}
			}
			now := epoch
			for i, o := range tc.outcomes {
				if len(mine) == 0 {
					t.Fatalf("outcome %d: peer 1 has no request left", i)
				}
				c := mine[0]
				mine = mine[1:]
				now = now.Add(time.Millisecond)
				if o == 'b' {
					s.ChunkBad(now, pid(1), c)
				} else {
					s.ChunkOK(now, pid(1), c, 1<<10, time.Millisecond)
				}
				acts := take(t, s, 0)
				banned := slices.Contains(acts, Action{Kind: Ban, Peer: pid(1), Chunk: -1, Stripe: -1})
				penal := slices.Contains(acts, Action{Kind: Penalise, Peer: pid(1), Chunk: -1, Stripe: -1})
				if banned != (i == tc.banAt) {
					t.Fatalf("outcome %d (%c): banned %v, want ban at %d; actions %v", i, o, banned, tc.banAt, acts)
				}
				if o == 'b' && !banned && !penal {
					t.Errorf("outcome %d: bad chunk without Penalise: %v", i, acts)
				}
				for _, a := range acts {
					switch {
					case a.Kind == Request && a.Peer == pid(1):
						if banned {
							t.Fatalf("request %v in the batch that bans", a)
						}
						mine = append(mine, a.Chunk)
					case a.Kind == Request && a.Chunk == c && o == 'g':
						t.Errorf("verified chunk %d requested again: %v", c, a)
					case a.Kind == Cancel && a.Peer == pid(1) && !banned:
						t.Errorf("unexpected %v", a)
					}
				}
				if banned {
					// Every outstanding request of the peer was cancelled
					// before the Ban.
					cancelled := 0
					for _, a := range acts {
						if a.Kind == Cancel && a.Peer == pid(1) {
							cancelled++
						}
					}
					if cancelled != len(mine) {
						t.Errorf("ban cancelled %d requests, peer had %d", cancelled, len(mine))
					}
					banIdx := slices.IndexFunc(acts, func(a Action) bool { return a.Kind == Ban })
					for j, a := range acts {
						if a.Kind == Cancel && a.Peer == pid(1) && j > banIdx {
							t.Errorf("cancel %v after the Ban: %v", a, acts)
						}
					}
					// The bad chunk is fetched again, from the other peer.
					s.PeerJoined(now, pid(1), fullBitmap(n))
					if got := take(t, s, 0); !slices.Equal(got, []Action{{Kind: Ban, Peer: pid(1), Chunk: -1, Stripe: -1}}) {
						t.Errorf("banned peer rejoining: %v, want Ban only", got)
					}
					pr := s.Progress()
					if last := pr.Peers[len(pr.Peers)-1]; !last.Banned || last.Peer != pid(1) {
						t.Errorf("progress does not list peer 1 as banned: %+v", pr.Peers)
					}
					return
				}
			}
		})
	}
}

func TestBadChunkFetchedElsewhere(t *testing.T) {
	l := Layout{Size: 4 << 10, ChunkSize: 1 << 10, K: 4}
	n := l.Chunks()
	s := mustNew(t, l, nil, Config{InitialQueue: 1, MaxQueue: 1}, 1)
	s.PeerJoined(epoch, pid(1), fullBitmap(n))
	r := take(t, s, Request)[0]
	s.PeerJoined(epoch, pid(2), fullBitmap(n))
	take(t, s, 0)
	s.ChunkBad(epoch.Add(time.Millisecond), pid(1), r.Chunk)
	acts := take(t, s, 0)
	for _, a := range acts {
		if a.Kind == Request && a.Peer == pid(1) && a.Chunk == r.Chunk {
			t.Errorf("bad chunk %d asked again from the peer that sent it: %v", r.Chunk, acts)
		}
	}
	if s.avail[r.Chunk] != 1 {
		t.Errorf("chunk %d availability %d after a bad copy, want 1", r.Chunk, s.avail[r.Chunk])
	}
}
