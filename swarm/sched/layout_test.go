package sched

import (
	"errors"
	"testing"
)

// TestLayout compares the O(1) layout arithmetic with a brute-force walk
// that lays the stripes out one chunk at a time.
func TestLayout(t *testing.T) {
	cases := []struct {
		name string
		l    Layout
	}{
		{"empty", Layout{Size: 0, ChunkSize: 1024, K: 4, M: 2}},
		{"one byte", Layout{Size: 1, ChunkSize: 1024, K: 4, M: 2}},
		{"exact stripe", Layout{Size: 4096, ChunkSize: 1024, K: 4, M: 2}},
		{"short last chunk", Layout{Size: 4096 + 1500, ChunkSize: 1024, K: 4, M: 2}},
		{"one short chunk alone", Layout{Size: 4096 + 100, ChunkSize: 1024, K: 4, M: 3}},
		{"no parity", Layout{Size: 10_000, ChunkSize: 1024, K: 3, M: 0}},
		{"k=1", Layout{Size: 5000, ChunkSize: 1024, K: 1, M: 1}},
		{"1 GiB", Layout{Size: 1 << 30, ChunkSize: 256 << 10, K: 16, M: 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.l
			if err := l.Validate(); err != nil {
				t.Fatal(err)
			}
			// Brute force.
			type chunk struct{ stripe, pos, size int }
			var want []chunk
			var total int64
			left := l.Size
			for st := 0; left > 0; st++ {
				var sizes []int
				for range l.K {
					if left == 0 {
						break
					}
					sz := min(int64(l.ChunkSize), left)
					left -= sz
					sizes = append(sizes, int(sz))
				}
				for i, sz := range sizes {
					want = append(want, chunk{st, i, sz})
					total += int64(sz)
				}
				for j := range l.M {
					want = append(want, chunk{st, len(sizes) + j, sizes[0]})
				}
			}
			if total != l.Size {
				t.Fatalf("brute force lost bytes: %d of %d", total, l.Size)
			}
			if l.Chunks() != len(want) {
				t.Fatalf("Chunks() = %d, want %d", l.Chunks(), len(want))
			}
			for c, w := range want {
				st, pos := l.StripeOf(c)
				if st != w.stripe || pos != w.pos || l.ChunkBytes(c) != w.size {
					t.Fatalf("chunk %d: stripe %d pos %d size %d, want %d %d %d", c, st, pos, l.ChunkBytes(c), w.stripe, w.pos, w.size)
				}
				if l.IsParity(c) != (pos >= l.StripeData(st)) || l.StripeStart(st)+pos != c {
					t.Fatalf("chunk %d: parity %v start %d inconsistent", c, l.IsParity(c), l.StripeStart(st))
				}
			}
		})
	}
}

func TestLayoutValidate(t *testing.T) {
	cases := []struct {
		name string
		l    Layout
	}{
		{"negative size", Layout{Size: -1, ChunkSize: 1024, K: 1}},
		{"zero chunk", Layout{Size: 1, ChunkSize: 0, K: 1}},
		{"zero k", Layout{Size: 1, ChunkSize: 1024, K: 0}},
		{"negative m", Layout{Size: 1, ChunkSize: 1024, K: 1, M: -1}},
		{"too wide", Layout{Size: 1, ChunkSize: 1024, K: 200, M: 57}},
		{"too many chunks", Layout{Size: 1 << 40, ChunkSize: 1024, K: 16}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.l.Validate(); !errors.Is(err, ErrLayout) {
				t.Errorf("Validate(%+v) = %v, want ErrLayout", tc.l, err)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	l := Layout{Size: 1 << 20, ChunkSize: 4 << 20, K: 4}
	good := []struct {
		name string
		cfg  Config
	}{
		{"zero value", Config{}},
		{"caps below a chunk are raised", Config{MaxInflightBytes: 1, MaxPeerInflightBytes: 1}},
		{"no duplicates", Config{MaxDuplicates: 1}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(l, nil, tc.cfg, newRand())
			if err != nil {
				t.Fatal(err)
			}
			if s.cfg.MaxInflightBytes < int64(l.ChunkSize) || s.cfg.MaxPeerInflightBytes < int64(l.ChunkSize) {
				t.Errorf("caps %d/%d below the chunk size %d", s.cfg.MaxInflightBytes, s.cfg.MaxPeerInflightBytes, l.ChunkSize)
			}
		})
	}
	bad := []struct {
		name string
		cfg  Config
	}{
		{"negative cap", Config{MaxInflightBytes: -1}},
		{"initial over max queue", Config{InitialQueue: 9, MaxQueue: 8}},
		{"min over max timeout", Config{MinTimeout: 2 * DefaultMaxTimeout}},
		{"too many duplicates", Config{MaxDuplicates: 99}},
		{"negative ban", Config{BanAfter: -1}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(l, nil, tc.cfg, newRand()); !errors.Is(err, ErrConfig) {
				t.Errorf("New with %+v: %v, want ErrConfig", tc.cfg, err)
			}
		})
	}
	if _, err := New(l, nil, Config{}, nil); !errors.Is(err, ErrNoRand) {
		t.Errorf("New with nil rand: %v, want ErrNoRand", err)
	}
}
