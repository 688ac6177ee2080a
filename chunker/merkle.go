package chunker

import (
	"fmt"

	"github.com/zeebo/blake3"
)

// Merkle tree domain prefixes (see the package doc).
const (
	domainLeaf  = 0x00
	domainInner = 0x01
	domainEmpty = 0x02
)

// HashChunk returns the chunk hash: BLAKE3-256 of the chunk's exact bytes.
func HashChunk(data []byte) [32]byte { return blake3.Sum256(data) }

func leafNode(h [32]byte) [32]byte {
	var b [33]byte
	b[0] = domainLeaf
	copy(b[1:], h[:])
	return blake3.Sum256(b[:])
}

func innerNode(l, r [32]byte) [32]byte {
	var b [65]byte
	b[0] = domainInner
	copy(b[1:], l[:])
	copy(b[33:], r[:])
	return blake3.Sum256(b[:])
}

// EmptyRoot is the Merkle root of zero chunks: BLAKE3-256 of the byte 0x02.
var EmptyRoot = blake3.Sum256([]byte{domainEmpty})

// MerkleRoot returns the root over chunk hashes in leaf order. Each level
// pairs nodes (0,1), (2,3), ...; an odd last node is promoted unchanged to
// the next level.
func MerkleRoot(hashes [][32]byte) [32]byte {
	if len(hashes) == 0 {
		return EmptyRoot
	}
	level := make([][32]byte, len(hashes))
	for i, h := range hashes {
		level[i] = leafNode(h)
	}
	for len(level) > 1 {
		next := level[:0]
		for j := 0; j < len(level); j += 2 {
			if j+1 == len(level) {
				next = append(next, level[j])
			} else {
				next = append(next, innerNode(level[j], level[j+1]))
			}
		}
		level = next
	}
	return level[0]
}

// Proof is an inclusion proof: the sibling nodes from the leaf level up,
// skipping levels where the node on the path is promoted.
type Proof [][32]byte

// ProofVersion is the first byte of an encoded proof.
const ProofVersion = 1

// maxProofLen bounds a proof: a tree of at most 2^63 leaves.
const maxProofLen = 63

// BuildProof returns the inclusion proof of leaf i among hashes.
func BuildProof(hashes [][32]byte, i int) (Proof, error) {
	n := len(hashes)
	if i < 0 || i >= n {
		return nil, fmt.Errorf("%w: leaf %d of %d", ErrBadIndex, i, n)
	}
	level := make([][32]byte, n)
	for j, h := range hashes {
		level[j] = leafNode(h)
	}
	var p Proof
	for len(level) > 1 {
		if sib := i ^ 1; sib < len(level) {
			p = append(p, level[sib])
		}
		next := level[:0]
		for j := 0; j < len(level); j += 2 {
			if j+1 == len(level) {
				next = append(next, level[j])
			} else {
				next = append(next, innerNode(level[j], level[j+1]))
			}
		}
		level, i = next, i/2
	}
	return p, nil
}

// VerifyProof checks that chunkHash is leaf i of a tree of n leaves with the
// given root. Errors wrap ErrBadProof.
func VerifyProof(root [32]byte, n, i int, chunkHash [32]byte, p Proof) error {
	if n <= 0 || i < 0 || i >= n {
		return fmt.Errorf("%w: leaf %d of %d", ErrBadProof, i, n)
	}
	node := leafNode(chunkHash)
	used := 0
	for ; n > 1; n, i = (n+1)/2, i/2 {
		if i^1 >= n { // promoted
			continue
		}
		if used == len(p) {
			return fmt.Errorf("%w: too short (%d nodes)", ErrBadProof, len(p))
		}
		if i&1 == 0 {
			node = innerNode(node, p[used])
		} else {
			node = innerNode(p[used], node)
		}
		used++
	}
	if used != len(p) {
		return fmt.Errorf("%w: %d nodes, path needs %d", ErrBadProof, len(p), used)
	}
	if node != root {
		return fmt.Errorf("%w: %w", ErrBadProof, ErrRootMismatch)
	}
	return nil
}

// AppendTo appends the proof encoding: version byte, node count byte, nodes.
func (p Proof) AppendTo(b []byte) []byte {
	b = append(b, ProofVersion, byte(len(p)))
	for _, h := range p {
		b = append(b, h[:]...)
	}
	return b
}

// DecodeProof parses an encoded proof.
func DecodeProof(b []byte) (Proof, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes, need at least 2", ErrBadProof, len(b))
	}
	if b[0] != ProofVersion {
		return nil, fmt.Errorf("%w: unknown version %d", ErrBadProof, b[0])
	}
	n := int(b[1])
	if n > maxProofLen {
		return nil, fmt.Errorf("%w: %d nodes, limit %d", ErrBadProof, n, maxProofLen)
	}
	if len(b) != 2+32*n {
		return nil, fmt.Errorf("%w: %d bytes for %d nodes, want %d", ErrBadProof, len(b), n, 2+32*n)
	}
	p := make(Proof, n)
	for j := range p {
		copy(p[j][:], b[2+32*j:])
	}
	return p, nil
}
