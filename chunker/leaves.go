package chunker

import (
	"fmt"
	"io"
)

// LeafLayer is the verified list of chunk hashes of one manifest, in chunk
// index order (32 bytes per chunk). Its encoding is the hashes concatenated,
// nothing else. A LeafLayer is immutable and safe for concurrent use.
type LeafLayer struct {
	hashes [][32]byte
	root   [32]byte
}

// NewLeafLayer wraps hashes (taken, not copied) and computes their root.
func NewLeafLayer(hashes [][32]byte) *LeafLayer {
	return &LeafLayer{hashes: hashes, root: MerkleRoot(hashes)}
}

// DecodeLeaves parses a fetched leaf layer for m and checks it against
// m.Root. A wrong length or a wrong root wraps ErrRootMismatch: either way
// the bytes are not the leaf layer of m.
func DecodeLeaves(b []byte, m *Manifest) (*LeafLayer, error) {
	n := m.NumChunks()
	if len(b) != 32*n {
		return nil, fmt.Errorf("leaf layer of %d bytes, want %d: %w", len(b), 32*n, ErrRootMismatch)
	}
	hs := make([][32]byte, n)
	for i := range hs {
		copy(hs[i][:], b[32*i:])
	}
	l := NewLeafLayer(hs)
	if l.root != m.Root {
		return nil, fmt.Errorf("leaf layer: %w", ErrRootMismatch)
	}
	return l, nil
}

// readLeaves reads and checks a leaf layer from r.
func readLeaves(r io.Reader, m *Manifest) (*LeafLayer, error) {
	b := make([]byte, 32*m.NumChunks())
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("reading leaves: %w", err)
	}
	var extra [1]byte
	if n, _ := r.Read(extra[:]); n != 0 {
		return nil, fmt.Errorf("leaf layer longer than %d bytes: %w", len(b), ErrRootMismatch)
	}
	return DecodeLeaves(b, m)
}

// Len returns the number of leaves.
func (l *LeafLayer) Len() int { return len(l.hashes) }

// Root returns the Merkle root.
func (l *LeafLayer) Root() [32]byte { return l.root }

// Hash returns the hash of chunk i. It panics if i is out of range.
func (l *LeafLayer) Hash(i int) [32]byte { return l.hashes[i] }

// Verify checks chunk bytes against leaf i; a mismatch wraps
// ErrChunkMismatch.
func (l *LeafLayer) Verify(i int, data []byte) error {
	if i < 0 || i >= len(l.hashes) {
		return fmt.Errorf("%w: chunk %d of %d", ErrBadIndex, i, len(l.hashes))
	}
	if HashChunk(data) != l.hashes[i] {
		return fmt.Errorf("chunk %d: %w", i, ErrChunkMismatch)
	}
	return nil
}

// Proof returns the inclusion proof of chunk i.
func (l *LeafLayer) Proof(i int) (Proof, error) { return BuildProof(l.hashes, i) }

// AppendTo appends the encoding (the hashes concatenated).
func (l *LeafLayer) AppendTo(b []byte) []byte {
	for _, h := range l.hashes {
		b = append(b, h[:]...)
	}
	return b
}

// Encode returns the encoding.
func (l *LeafLayer) Encode() []byte { return l.AppendTo(make([]byte, 0, 32*len(l.hashes))) }
