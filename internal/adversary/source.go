package adversary

import "github.com/shoal-p2p/shoal/swarm"

// CorruptSource serves the chunks of the wrapped source with one byte in
// every 4096 flipped: a lying peer. The wrapped source is never changed.
type CorruptSource struct{ swarm.Source }

// ReadChunk reads chunk i and returns a corrupted copy.
func (c CorruptSource) ReadChunk(i int, buf []byte) ([]byte, error) {
	b, err := c.Source.ReadChunk(i, buf)
	if err != nil || len(b) == 0 {
		return b, err
	}
	// b may alias a read-only mapping: corrupt a copy.
	out := make([]byte, len(b))
	copy(out, b)
	for j := 0; j < len(out); j += 4096 {
		out[j] ^= 0xa5
	}
	return out, nil
}
