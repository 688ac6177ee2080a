package chunker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// splitChunks returns every chunk (data and parity) of content under m,
// computed with the exported stripe API, at exact lengths.
func splitChunks(t testing.TB, m *Manifest, content []byte) [][]byte {
	t.Helper()
	out := make([][]byte, m.NumChunks())
	for s := range m.NumStripes() {
		d, start := m.StripeDataCount(s), m.StripeStart(s)
		data := make([][]byte, d)
		for j := range d {
			i := start + j
			off := m.DataChunkOffset(i)
			data[j] = content[off : off+int64(m.ChunkLen(i))]
			out[i] = data[j]
		}
		if m.ParityShards == 0 {
			continue
		}
		par, err := EncodeStripe(m, s, data)
		if err != nil {
			t.Fatalf("EncodeStripe(%d): %v", s, err)
		}
		for j, p := range par {
			out[start+d+j] = p
		}
	}
	return out
}

func TestStripeEraseAnyM(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cs := MinChunkSize
	type geom struct{ size, k, m int }
	cases := []geom{
		{0, 4, 2}, {1, 4, 2}, {cs, 4, 2}, {cs + 1, 4, 2}, {4 * cs, 4, 2}, {8 * cs, 4, 2},
		{8*cs + 1, 4, 2}, {5*cs - 1, 4, 3}, {3 * cs, 1, 1}, {7 * cs, 3, 0}, {17*cs + 99, 16, 4},
	}
	for range 12 {
		cases = append(cases, geom{rng.IntN(20 * cs), 1 + rng.IntN(6), rng.IntN(4)})
	}
	for _, g := range cases {
		t.Run(fmt.Sprintf("size=%d_k=%d_m=%d", g.size, g.k, g.m), func(t *testing.T) {
			content := xof(fmt.Sprint("stripe", g), g.size)
			m := &Manifest{Name: "f", Size: int64(g.size), ChunkSize: cs, DataShards: g.k, ParityShards: g.m, Hash: HashBLAKE3}
			chunks := splitChunks(t, m, content)
			// The publish pipeline must produce the same chunk hashes, from
			// the mapped file and with pread.
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "f"), content, 0o644)
			for _, noMap := range []bool{false, true} {
				publishNoMap = noMap
				p, err := Publish(context.Background(), nil, filepath.Join(dir, "f"), PublishOptions{ChunkSize: cs, DataShards: g.k, ParityShards: g.m, NoParity: g.m == 0})
				publishNoMap = false
				if err != nil {
					t.Fatal(err)
				}
				for i, c := range chunks {
					if p.Leaves.Hash(i) != HashChunk(c) {
						t.Fatalf("chunk %d (pread %v): publish hash differs from EncodeStripe", i, noMap)
					}
				}
			}
			for s := range m.NumStripes() {
				start, n := m.StripeStart(s), m.StripeLen(s)
				for trial := range 4 {
					erase := rng.Perm(n)[:g.m]
					if trial == 0 {
						erase = nil // nothing missing is a no-op
					}
					got := make([][]byte, n)
					copy(got, chunks[start:start+n])
					for _, e := range erase {
						got[e] = nil
					}
					if err := DecodeStripe(m, s, got); err != nil {
						t.Fatalf("stripe %d erase %v: %v", s, erase, err)
					}
					for pos := range n {
						if !bytes.Equal(got[pos], chunks[start+pos]) {
							t.Fatalf("stripe %d erase %v: chunk %d differs after decode", s, erase, pos)
						}
					}
				}
				// One more erasure than m must fail (when the stripe has that many).
				if g.m+1 <= n {
					got := make([][]byte, n)
					copy(got, chunks[start:start+n])
					for _, e := range rng.Perm(n)[:g.m+1] {
						got[e] = nil
					}
					if err := DecodeStripe(m, s, got); !errors.Is(err, ErrNotDecodable) {
						t.Fatalf("stripe %d with m+1 erasures: %v, want ErrNotDecodable", s, err)
					}
				}
			}
		})
	}
}
