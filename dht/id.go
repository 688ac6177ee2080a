package dht

import (
	"math/bits"
	"math/rand/v2"
)

// Key is a point in the 256-bit Kademlia key space: a node's PeerID or a
// content ID. Both are plain 32-byte values; conversions are free.
type Key = [32]byte

// xor returns the XOR distance between a and b.
func xor(a, b Key) Key {
	var d Key
	for i := range d {
		d[i] = a[i] ^ b[i]
	}
	return d
}

// cmpDist compares the distances of a and b to target: -1 when a is closer,
// +1 when b is closer, 0 when equal (a == b).
func cmpDist(target, a, b Key) int {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			if da < db {
				return -1
			}
			return 1
		}
	}
	return 0
}

// commonPrefixLen returns the number of leading bits a and b share (256 when
// they are equal). It is the index of the bucket b falls in, seen from a.
func commonPrefixLen(a, b Key) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return 256
}

// randomKeyInBucket returns a random key whose common prefix with self is
// exactly i bits long (0 <= i < 256).
func randomKeyInBucket(rng *rand.Rand, self Key, i int) Key {
	var k Key
	for j := range k {
		k[j] = byte(rng.Uint32())
	}
	// Copy the first i bits of self, flip bit i, keep the rest random.
	byteIdx, bit := i/8, uint(i%8)
	copy(k[:byteIdx], self[:byteIdx])
	mask := byte(0xff) << (8 - bit) // the first `bit` bits of the byte
	flip := byte(0x80) >> bit
	k[byteIdx] = (self[byteIdx] & mask) | (^self[byteIdx] & flip) | (k[byteIdx] &^ (mask | flip))
	return k
}
