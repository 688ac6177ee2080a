package chunker

import (
	"fmt"
	"sync"

	"github.com/klauspost/reedsolomon"
)

// Coding note. Every stripe is coded with one RS(k, m) code (klauspost
// reedsolomon, its default systematic matrix over GF(2^8)), shard length
// P_s = length of the stripe's first data chunk. A short last chunk is
// zero-padded to P_s; a short last stripe (d_s < k) is coded as if data
// shards d_s..k-1 were present and all zero. Those shards are known to every
// downloader, so any d_s of the stripe's d_s+m chunks rebuild it. Padding and
// the virtual zero shards are never sent or stored.

var rsCache sync.Map // uint32(k<<16|m) -> reedsolomon.Encoder

// rsFor returns the shared encoder for RS(k, m), m >= 1. Encoders are used
// concurrently by many goroutines; they spawn none of their own.
func rsFor(k, m int) (reedsolomon.Encoder, error) {
	key := uint32(k<<16 | m)
	if e, ok := rsCache.Load(key); ok {
		return e.(reedsolomon.Encoder), nil
	}
	e, err := reedsolomon.New(k, m, reedsolomon.WithMaxGoroutines(1))
	if err != nil {
		return nil, fmt.Errorf("reed-solomon %d+%d: %w", k, m, err)
	}
	got, _ := rsCache.LoadOrStore(key, e)
	return got.(reedsolomon.Encoder), nil
}

// EncodeStripe returns the m parity chunks of stripe s given its d_s data
// chunks at their exact lengths. data is not modified.
func EncodeStripe(m *Manifest, s int, data [][]byte) ([][]byte, error) {
	if err := m.checkStripe(s); err != nil {
		return nil, err
	}
	chunks := make([][]byte, m.StripeLen(s))
	copy(chunks, data)
	if len(data) != m.StripeDataCount(s) {
		return nil, fmt.Errorf("stripe %d: %d data chunks, want %d: %w", s, len(data), m.StripeDataCount(s), ErrBadIndex)
	}
	if err := DecodeStripe(m, s, chunks); err != nil {
		return nil, err
	}
	return chunks[len(data):], nil
}

// DecodeStripe fills in the missing chunks of stripe s. chunks holds the
// stripe's d_s+m chunks in order (data then parity); a missing chunk is nil,
// a present one must have its exact length (Manifest.ChunkLen) and is assumed
// verified. On success every entry holds its chunk at its exact length; new
// slices are allocated for the missing ones, present ones are not modified.
// It needs at least d_s present chunks, else it returns ErrNotDecodable.
func DecodeStripe(m *Manifest, s int, chunks [][]byte) error {
	if err := m.checkStripe(s); err != nil {
		return err
	}
	d, k, par := m.StripeDataCount(s), m.DataShards, m.ParityShards
	if len(chunks) != d+par {
		return fmt.Errorf("stripe %d: %d chunks given, want %d: %w", s, len(chunks), d+par, ErrBadIndex)
	}
	start := m.StripeStart(s)
	have := 0
	for pos, c := range chunks {
		if c == nil {
			continue
		}
		if want := m.ChunkLen(start + pos); len(c) != want {
			return fmt.Errorf("stripe %d chunk %d: %d bytes, want %d: %w", s, pos, len(c), want, ErrChunkMismatch)
		}
		have++
	}
	if have == len(chunks) {
		return nil
	}
	if have < d {
		return fmt.Errorf("stripe %d: %d of %d chunks, need %d: %w", s, have, d+par, d, ErrNotDecodable)
	}
	enc, err := rsFor(k, par)
	if err != nil {
		return err
	}
	p := m.stripeShardLen(s)
	shards := make([][]byte, k+par)
	var zero []byte
	for j := range k {
		switch {
		case j >= d:
			if zero == nil {
				zero = make([]byte, p)
			}
			shards[j] = zero
		case chunks[j] == nil:
			shards[j] = make([]byte, 0, p)
		case len(chunks[j]) < p:
			padded := make([]byte, p)
			copy(padded, chunks[j])
			shards[j] = padded
		default:
			shards[j] = chunks[j]
		}
	}
	for j := range par {
		if c := chunks[d+j]; c != nil {
			shards[k+j] = c
		} else {
			shards[k+j] = make([]byte, 0, p)
		}
	}
	if err := enc.Reconstruct(shards); err != nil {
		return fmt.Errorf("stripe %d: reconstruct: %w", s, err)
	}
	for pos := range chunks {
		if chunks[pos] != nil {
			continue
		}
		sh := shards[pos]
		if pos >= d {
			sh = shards[k+pos-d]
		}
		chunks[pos] = sh[:m.ChunkLen(start+pos)]
	}
	return nil
}
