package swarm

import (
	"testing"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Each peer is refused a chunk at most once; past the per-item caps on
// refused and tracked peers, requests are served as usual and counted.
func TestSuperSeedClaimCaps(t *testing.T) {
	s := NewServer(ServerConfig{})
	defer s.Close()
	ss := s.newSuperSeed(10)
	peer := func(n int) identity.PeerID { return identity.PeerID{byte(n), byte(n >> 8), 1} }
	if !ss.claim(peer(0), 3, true) || !ss.claim(peer(0), 3, true) {
		t.Fatal("the first recipient of a chunk was refused it")
	}
	if ss.claim(peer(1), 3, true) {
		t.Fatal("a second peer was served a chunk already sent, want one refusal")
	}
	if !ss.claim(peer(1), 3, true) {
		t.Fatal("a peer was refused the same chunk twice")
	}
	if !ss.claim(peer(9), 3, false) {
		t.Fatal("a peer without a session was refused")
	}
	ss.unclaim(peer(0), 5) // not its recipient: no effect
	if !ss.claim(peer(2), 4, true) {
		t.Fatal("a chunk nobody received was refused")
	}
	ss.unclaim(peer(2), 4) // the send failed
	if !ss.claim(peer(3), 4, true) {
		t.Fatal("after a failed send the next peer was refused")
	}
	for n := 4; n < 4+maxSuperSeedRefused; n++ { // peer 1 already has a bitmap
		ss.claim(peer(n), 3, true)
	}
	if refused, _ := s.SuperSeedStats(); refused != maxSuperSeedRefused {
		t.Fatalf("%d refusals, want %d (one per peer up to the cap)", refused, maxSuperSeedRefused)
	}
	if _, over := s.SuperSeedStats(); over != 1 {
		t.Fatalf("%d overflows, want 1 (the peer past the refused cap)", over)
	}
	for n := 4 + maxSuperSeedRefused; len(ss.tokens) < maxSuperSeedPeers; n++ {
		ss.claim(peer(n), 0, true)
	}
	if !ss.claim(peer(100000), 3, true) {
		t.Fatal("a peer past the tracked-peer cap was refused")
	}
	if _, over := s.SuperSeedStats(); over < 2 {
		t.Fatalf("%d overflows, want the tracked-peer cap counted too", over)
	}
}
