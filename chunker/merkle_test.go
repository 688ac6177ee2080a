package chunker

import (
	"errors"
	"testing"
)

func leafHashes(n int) [][32]byte {
	hs := make([][32]byte, n)
	for i := range hs {
		hs[i] = HashChunk([]byte{byte(i), byte(i >> 8)})
	}
	return hs
}

// naiveRoot is a recursive reference: split at the largest power of two
// below n (equivalent to level-wise pairing with promotion).
func naiveRoot(nodes [][32]byte) [32]byte {
	if len(nodes) == 1 {
		return nodes[0]
	}
	k := 1
	for k*2 < len(nodes) {
		k *= 2
	}
	return innerNode(naiveRoot(nodes[:k]), naiveRoot(nodes[k:]))
}

func TestMerkleRootMatchesReference(t *testing.T) {
	if MerkleRoot(nil) != EmptyRoot {
		t.Fatal("root of no leaves is not EmptyRoot")
	}
	for n := 1; n <= 70; n++ {
		hs := leafHashes(n)
		leaves := make([][32]byte, n)
		for i, h := range hs {
			leaves[i] = leafNode(h)
		}
		if got, want := MerkleRoot(hs), naiveRoot(leaves); got != want {
			t.Fatalf("n=%d: root %x, reference %x", n, got, want)
		}
	}
}

func TestProofEveryLeaf(t *testing.T) {
	for n := 1; n <= 70; n++ {
		hs := leafHashes(n)
		root := MerkleRoot(hs)
		for i := range n {
			p, err := BuildProof(hs, i)
			if err != nil {
				t.Fatalf("n=%d i=%d: BuildProof: %v", n, i, err)
			}
			if err := VerifyProof(root, n, i, hs[i], p); err != nil {
				t.Fatalf("n=%d i=%d: VerifyProof: %v", n, i, err)
			}
			p2, err := DecodeProof(p.AppendTo(nil))
			if err != nil || VerifyProof(root, n, i, hs[i], p2) != nil {
				t.Fatalf("n=%d i=%d: encoded proof does not verify: %v", n, i, err)
			}
			// Wrong leaf, wrong index, tampered node, wrong size must fail.
			if err := VerifyProof(root, n, i, hs[(i+1)%n], p); n > 1 && !errors.Is(err, ErrBadProof) {
				t.Fatalf("n=%d i=%d: wrong leaf verified", n, i)
			}
			if n > 1 {
				if err := VerifyProof(root, n, (i+1)%n, hs[i], p); err == nil {
					t.Fatalf("n=%d i=%d: proof verified at another index", n, i)
				}
			}
			if len(p) > 0 {
				bad := append(Proof(nil), p...)
				bad[len(bad)/2][0] ^= 1
				if err := VerifyProof(root, n, i, hs[i], bad); !errors.Is(err, ErrBadProof) {
					t.Fatalf("n=%d i=%d: tampered proof verified", n, i)
				}
			}
			if err := VerifyProof(root, n, i, hs[i], append(p, root)); !errors.Is(err, ErrBadProof) {
				t.Fatalf("n=%d i=%d: over-long proof verified", n, i)
			}
		}
	}
}

func TestLeafLayer(t *testing.T) {
	m := &Manifest{Name: "x", Size: 3 * MinChunkSize, ChunkSize: MinChunkSize, DataShards: 2, ParityShards: 1, Hash: HashBLAKE3}
	hs := leafHashes(m.NumChunks())
	m.Root = MerkleRoot(hs)
	l, err := DecodeLeaves(NewLeafLayer(hs).Encode(), m)
	if err != nil {
		t.Fatalf("DecodeLeaves: %v", err)
	}
	if l.Root() != m.Root || l.Len() != 5 {
		t.Fatalf("leaf layer root or length wrong: %d leaves", l.Len())
	}
	enc := l.Encode()
	enc[40] ^= 1
	if _, err := DecodeLeaves(enc, m); !errors.Is(err, ErrRootMismatch) {
		t.Fatalf("tampered leaves: err %v, want ErrRootMismatch", err)
	}
	if _, err := DecodeLeaves(enc[:64], m); !errors.Is(err, ErrRootMismatch) {
		t.Fatalf("short leaves: err %v, want ErrRootMismatch", err)
	}
	if err := l.Verify(0, []byte{0, 0}); err != nil {
		t.Fatalf("Verify(0) of the right bytes: %v", err)
	}
	if err := l.Verify(0, []byte{1, 0}); !errors.Is(err, ErrChunkMismatch) {
		t.Fatalf("Verify(0) of wrong bytes: %v, want ErrChunkMismatch", err)
	}
}

func FuzzVerifyProof(f *testing.F) {
	hs := leafHashes(13)
	for _, i := range []int{0, 5, 12} {
		p, _ := BuildProof(hs, i)
		f.Add(p.AppendTo(nil), uint16(13), uint16(i), hs[i][:])
	}
	root := MerkleRoot(hs)
	f.Fuzz(func(t *testing.T, enc []byte, n, i uint16, leaf []byte) {
		p, err := DecodeProof(enc)
		if err != nil {
			return
		}
		if len(p.AppendTo(nil)) != len(enc) {
			t.Fatalf("proof re-encodes to another length")
		}
		var h [32]byte
		copy(h[:], leaf)
		// The leaf count comes from the manifest, so binding is only promised
		// for the true n: with n = 13 only the real leaf at its index may
		// verify. (A root does not pin n by itself; see the package doc.)
		if n == 13 && VerifyProof(root, 13, int(i), h, p) == nil {
			if int(i) >= 13 || h != hs[i] {
				t.Fatalf("bogus proof verified: i=%d", i)
			}
		}
		_ = VerifyProof(root, int(n), int(i), h, p) // must not panic
	})
}
