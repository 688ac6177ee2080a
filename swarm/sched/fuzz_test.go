package sched

import (
	"math/rand/v2"
	"testing"
	"time"
)

// FuzzEvents drives the scheduler with an arbitrary event sequence,
// including reports the driver should never make (answers to requests
// never issued, unknown peers, chunks out of range), and checks the
// internal invariants after every event.
func FuzzEvents(f *testing.F) {
	f.Add([]byte{3, 2, 1, 0, 0xff, 0, 1, 0xff, 7, 7, 7, 7, 6, 50, 7, 7})
	f.Add([]byte{8, 0, 0, 0, 0x0f, 3, 0, 1, 3, 0, 2, 7, 5, 0, 6, 200, 0, 1, 0xf0, 7, 7, 7})
	f.Add([]byte{1, 3, 9, 0, 0xaa, 0, 1, 0x55, 4, 0, 0, 1, 4, 1, 1, 2, 6, 255, 6, 255, 7, 7, 2, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		l := Layout{ChunkSize: 1024, K: 1 + int(data[0]%8), M: int(data[1] % 4)}
		l.Size = int64(data[2]%64) * 700
		data = data[3:]
		cfg := Config{MaxQueue: 4, MinTimeout: 10 * time.Millisecond, InitialTimeout: 50 * time.Millisecond}
		s, err := New(l, nil, cfg, rand.New(rand.NewPCG(uint64(len(data)), 3)))
		if err != nil {
			t.Fatal(err)
		}
		n := max(l.Chunks(), 1)
		now := epoch
		next := func() int {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return int(b)
		}
		var acts []Action
		for len(data) > 0 {
			op, peer := next()%10, pid(byte(next()%4))
			now = now.Add(time.Millisecond)
			switch op {
			case 0:
				bm := make([]byte, (n+7)/8)
				pat := byte(next())
				for i := range bm {
					bm[i] = pat
				}
				s.PeerJoined(now, peer, bm)
			case 1:
				s.Have(now, peer, next()%(n+1))
			case 2:
				c := next() % (n + 1)
				s.ChunkOK(now, peer, c, 1024, 0)
			case 3:
				s.ChunkBad(now, peer, next()%(n+1))
			case 4:
				s.RequestFailed(now, peer, next()%(n+1), Reason(1+next()%5))
			case 5:
				s.PeerLeft(now, peer)
			case 6:
				now = now.Add(time.Duration(next()) * time.Millisecond)
				s.Tick(now)
			case 8: // readers steer: a few wants, some urgent
				var ws []Want
				for range next() % 4 {
					a := next() % (n + 1)
					ws = append(ws, Want{a, a + next()%3})
				}
				s.Focus(now, ws, next()%3)
			case 9:
				s.SetMode(now, Mode(next()%4))
			case 7: // answer the oldest outstanding request well
				if len(s.heap) > 0 {
					r := s.reqs[s.heap[0]]
					s.ChunkOK(now, r.peer.id, int(r.chunk), int(r.size), 0)
				}
			}
			acts, _ = s.Ready(acts[:0])
			for _, a := range acts {
				if a.Kind == Request && s.Verified(a.Chunk) {
					t.Fatalf("%v for a verified chunk", a)
				}
			}
			if err := checkInternal(s); err != nil {
				t.Fatalf("after op %d: %v", op, err)
			}
		}
	})
}
