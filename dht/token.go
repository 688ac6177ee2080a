package dht

import (
	"crypto/hmac"
	"crypto/sha256"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

const tokenSize = 16

// tokens hands out and checks write tokens: HMAC-SHA256 of the requester's
// address and PeerID under a secret that rotates; the previous secret is
// still accepted.
type tokens struct {
	cur, prev [32]byte
	rotated   time.Time
	every     time.Duration
}

func newTokens(rng *rand.Rand, now time.Time, every time.Duration) tokens {
	t := tokens{rotated: now, every: every}
	fill(rng, t.cur[:])
	fill(rng, t.prev[:])
	return t
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// rotate changes the secret when it is due.
func (t *tokens) rotate(rng *rand.Rand, now time.Time) {
	if now.Sub(t.rotated) < t.every {
		return
	}
	t.prev = t.cur
	fill(rng, t.cur[:])
	t.rotated = now
}

func (t *tokens) nextRotation() time.Time { return t.rotated.Add(t.every) }

func tokenFor(secret *[32]byte, addr netip.AddrPort, id identity.PeerID) []byte {
	mac := hmac.New(sha256.New, secret[:])
	mac.Write(appendAddr(make([]byte, 0, maxAddrSize), addr))
	mac.Write(id[:])
	return mac.Sum(nil)[:tokenSize]
}

func (t *tokens) make(addr netip.AddrPort, id identity.PeerID) []byte {
	return tokenFor(&t.cur, addr, id)
}

func (t *tokens) valid(tok []byte, addr netip.AddrPort, id identity.PeerID) bool {
	if len(tok) != tokenSize {
		return false
	}
	return hmac.Equal(tok, tokenFor(&t.cur, addr, id)) || hmac.Equal(tok, tokenFor(&t.prev, addr, id))
}
