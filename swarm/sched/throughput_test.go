package sched

import (
	"testing"
	"time"
)

// TestThroughput checks that the scheduler keeps every peer busy: a
// download from full peers of known rates must finish close to the time
// the sum of their rates allows, and a very slow peer must not add a long
// tail (the endgame routes around it).
func TestThroughput(t *testing.T) {
	const mib = 1 << 20
	l := Layout{Size: 64 * mib, ChunkSize: 256 << 10, K: 16, M: 4}
	n := l.Chunks()
	cases := []struct {
		name   string
		rates  []float64 // bytes/s; the sum sets the ideal time
		slow   bool      // add a 10 KiB/s peer holding everything
		lat    time.Duration
		budget float64 // allowed time / ideal time
	}{
		{"one peer", []float64{8 * mib}, false, 20 * time.Millisecond, 1.2},
		{"four unequal peers", []float64{1 * mib, 2 * mib, 4 * mib, 8 * mib}, false, 20 * time.Millisecond, 1.25},
		{"high latency", []float64{4 * mib, 4 * mib}, false, 150 * time.Millisecond, 1.3},
		{"plus a very slow peer", []float64{4 * mib, 4 * mib}, true, 20 * time.Millisecond, 1.25},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var peers []*simPeer
			sum := 0.0
			for i, r := range tc.rates {
				peers = append(peers, &simPeer{id: pid(byte(i)), rate: r, lat: tc.lat, holds: all(n)})
				sum += r
			}
			if tc.slow {
				peers = append(peers, &simPeer{id: pid(99), rate: 10 << 10, lat: tc.lat, holds: all(n)})
			}
			w := fixedWorld(t, l, Config{}, nil, peers)
			w.record = false
			w.run(1_000_000)
			if !w.doneSeen {
				t.Fatalf("not done: %v", w.s)
			}
			ideal := time.Duration(float64(l.Size) / sum * float64(time.Second))
			took := w.now.Sub(epoch)
			t.Logf("took %v, ideal %v (%.2fx)", took, ideal, float64(took)/float64(ideal))
			if float64(took) > tc.budget*float64(ideal) {
				t.Errorf("took %v, want at most %.2f x ideal %v", took, tc.budget, ideal)
			}
		})
	}
}
