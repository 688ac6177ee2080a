package swarm

import (
	"slices"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

func ssPeerID(n int) identity.PeerID { return identity.PeerID{byte(n), byte(n >> 8), 1} }

// trust makes peer a trusted owner: it gets chunk i and another peer (that
// the seeder did not send it to) announces it.
func trust(t *testing.T, ss *superSeed, peer identity.PeerID, i int, other identity.PeerID) {
	t.Helper()
	dec, gen := ss.claim(peer, i, true)
	if dec != ssClaimed {
		t.Fatalf("claim of a free chunk: decision %d, want claimed", dec)
	}
	ss.sent(i, gen)
	ss.held(peer, []uint32{uint32(i)})
	ss.held(other, []uint32{uint32(i)})
}

// The claim rules, step by step: who is refused, and when a claim ends.
func TestSuperSeedClaims(t *testing.T) {
	s := NewServer(ServerConfig{})
	defer s.Close()
	ss := s.newSuperSeed(200, nil)
	a, b, c, d := ssPeerID(1), ssPeerID(2), ssPeerID(3), ssPeerID(4)

	if dec, _ := ss.claim(a, 0, false); dec != ssServe {
		t.Fatalf("a peer without a session: decision %d, want served without a claim", dec)
	}
	// An untrusted owner's chunk is served to others (a hoarder blocks
	// nobody).
	dec, gen := ss.claim(a, 1, true)
	if dec != ssClaimed {
		t.Fatalf("first request of chunk 1: decision %d, want claimed", dec)
	}
	ss.sent(1, gen)
	if dec, _ := ss.claim(b, 1, true); dec != ssServe {
		t.Fatalf("chunk of an owner that passed nothing on: decision %d, want served", dec)
	}
	// It does not announce it: the claim lapses, with a strike.
	if tell := ss.lapse(1, gen); tell != nil {
		t.Fatalf("lapse told %v, want nobody (nobody was refused)", tell)
	}
	if p := ss.peers[0]; p.strikes != 1 || p.pending != 0 {
		t.Fatalf("after a lapse: strikes %d pending %d, want 1 and 0", p.strikes, p.pending)
	}

	// c passes chunk 2 on to d: c is trusted, and others are refused its
	// chunks, once per peer.
	trust(t, ss, c, 2, d)
	dec, gen = ss.claim(c, 3, true)
	if dec != ssClaimed {
		t.Fatalf("trusted peer's claim: decision %d", dec)
	}
	if dec, _ := ss.claim(b, 3, true); dec != ssRefuse {
		t.Fatalf("chunk being sent to a trusted owner: decision %d, want refused", dec)
	}
	// While the chunk is on its way (c's claims usually take long to be
	// announced), b is refused again; then it is served.
	ss.peers[ss.tokens[c]-1].lat = time.Hour
	if dec, _ := ss.claim(b, 3, true); dec != ssRefuse {
		t.Fatalf("request again while the chunk is on its way: decision %d, want refused", dec)
	}
	ss.peers[ss.tokens[c]-1].lat = time.Nanosecond
	if dec, _ := ss.claim(b, 3, true); dec != ssServe {
		t.Fatalf("second request after a refusal: decision %d, want served", dec)
	}
	if ss.chunks[3].owner != ss.tokens[c] || !ss.chunks[3].dup {
		t.Fatalf("chunk 3 %+v: want still c's, marked sent to another peer", ss.chunks[3])
	}
	// A failed send releases the claim and tells the peers refused it.
	if tell := ss.failed(3, gen); !slices.Equal(tell, []identity.PeerID{b}) {
		t.Fatalf("failed send told %v, want b", tell)
	}
	if ss.chunks[3].owner != 0 || ss.peers[ss.tokens[c]-1].pending != 0 {
		t.Fatalf("after a failed send: chunk %+v, owner pending %d", ss.chunks[3], ss.peers[ss.tokens[c]-1].pending)
	}
	_, gen = ss.claim(c, 13, true)
	ss.sent(13, gen)
	ss.held(c, []uint32{13})
	if dec, _ := ss.claim(b, 13, true); dec != ssRefuse {
		t.Fatalf("chunk announced by a trusted owner: decision %d, want refused", dec)
	}

	// c announces chunk 4 but nobody else does within the hold: a strike,
	// and the claim is released.
	dec, gen = ss.claim(c, 4, true)
	ss.sent(4, gen)
	ss.held(c, []uint32{4})
	if dec, _ := ss.claim(d, 4, true); dec != ssRefuse {
		t.Fatalf("chunk held by a trusted owner: decision %d, want refused", dec)
	}
	if tell := ss.holdOver(4, gen); !slices.Equal(tell, []identity.PeerID{d}) {
		t.Fatalf("hold over told %v, want d", tell)
	}
	if p := ss.peers[ss.tokens[c]-1]; p.strikes != 1 || p.unpassed != 1 || ss.chunks[4].owner != 0 { // chunk 13 is still unpassed
		t.Fatalf("after a chunk not passed on: owner %+v, chunk %+v", p, ss.chunks[4])
	}
	if ss.peers[ss.tokens[c]-1].trusted() {
		t.Fatal("a peer with 1 chunk passed on and 1 strike is still trusted")
	}

	// A chunk passed on is refused whoever owns it.
	trust(t, ss, c, 5, d)
	if dec, _ := ss.claim(b, 5, true); dec != ssRefuse {
		t.Fatalf("chunk passed on: decision %d, want refused", dec)
	}
	if tell := ss.holdOver(5, ss.chunks[5].gen); tell != nil || ss.chunks[5].owner == 0 {
		t.Fatalf("hold over of a chunk passed on told %v (want nobody), chunk %+v (want kept)", tell, ss.chunks[5])
	}

	// When the owner leaves, its claims of chunks not passed on go and the
	// peers refused them are told; a chunk passed on stays claimed.
	e := ssPeerID(5)
	trust(t, ss, e, 7, d)
	_, gen = ss.claim(e, 8, true)
	ss.sent(8, gen)
	ss.held(e, []uint32{8})
	if dec, _ := ss.claim(b, 8, true); dec != ssRefuse {
		t.Fatalf("chunk held by a trusted owner: decision %d, want refused", dec)
	}
	tell := ss.forget(e)
	if ss.chunks[8].owner != 0 || !slices.Equal(tell[b], []uint32{8}) || len(tell) != 1 {
		t.Fatalf("forget: chunk 8 %+v, told %v; want it released and b told", ss.chunks[8], tell)
	}
	if ss.chunks[7].owner != ss.tokens[e] {
		t.Fatalf("forget released chunk 7 %+v, which was passed on", ss.chunks[7])
	}
	// When the peer it was passed on to leaves too, it goes.
	ss.forget(d)
	if ss.chunks[7].owner != 0 {
		t.Fatalf("chunk 7 %+v still claimed after its owner and the peer it was passed to left", ss.chunks[7])
	}

	// A new peer that announces what it got is believed until it fails:
	// others are sent away for chunks it announced, not for chunks on
	// their way to it (a hoarder never announces).
	f := ssPeerID(6)
	_, gen = ss.claim(f, 10, true)
	ss.sent(10, gen)
	if dec, _ := ss.claim(b, 10, true); dec != ssServe {
		t.Fatalf("chunk not yet announced by a new owner: decision %d, want served", dec)
	}
	_, gen = ss.claim(f, 11, true)
	ss.sent(11, gen)
	ss.held(f, []uint32{11})
	if dec, _ := ss.claim(b, 11, true); dec != ssRefuse {
		t.Fatalf("chunk announced by a new owner: decision %d, want refused", dec)
	}
	ss.holdOver(11, gen) // nobody got it from f
	_, gen = ss.claim(f, 12, true)
	ss.sent(12, gen)
	ss.held(f, []uint32{12})
	if dec, _ := ss.claim(b, 12, true); dec != ssServe {
		t.Fatalf("chunk announced by an owner with a strike and nothing passed on: decision %d, want served", dec)
	}
}

// Per-peer caps: chunks sent and not announced, and chunks announced and
// not passed on; beyond them the peer is served without a claim.
func TestSuperSeedPeerCaps(t *testing.T) {
	s := NewServer(ServerConfig{})
	defer s.Close()
	ss := s.newSuperSeed(200, nil)
	a, b := ssPeerID(1), ssPeerID(2)
	for i := range maxSuperSeedPending {
		if dec, _ := ss.claim(a, i, true); dec != ssClaimed {
			t.Fatalf("claim %d: decision %d", i, dec)
		}
	}
	if dec, _ := ss.claim(a, maxSuperSeedPending, true); dec != ssServe {
		t.Fatalf("claim past the pending cap: decision %d, want served without a claim", dec)
	}
	if got := s.SuperSeedCounters().Capped; got != 1 {
		t.Fatalf("capped %d, want 1", got)
	}
	idx := make([]uint32, maxSuperSeedPending)
	for i := range idx {
		idx[i] = uint32(i)
	}
	ss.held(a, idx)
	n := maxSuperSeedPending
	for ; ss.peers[0].unpassed < maxSuperSeedUnpassed; n++ {
		_, gen := ss.claim(a, n, true)
		ss.sent(n, gen)
		ss.held(a, []uint32{uint32(n)})
	}
	if dec, _ := ss.claim(a, n, true); dec != ssServe {
		t.Fatalf("claim past the unpassed cap: decision %d, want served without a claim", dec)
	}
	ss.held(b, []uint32{0}) // b got chunk 0 from a
	if dec, _ := ss.claim(a, n, true); dec != ssClaimed {
		t.Fatalf("claim after one chunk was passed on: decision %d, want claimed", dec)
	}
}

// Past the per-item caps on refused and tracked peers, requests are served
// as usual and counted.
func TestSuperSeedItemCaps(t *testing.T) {
	s := NewServer(ServerConfig{})
	defer s.Close()
	ss := s.newSuperSeed(10, nil)
	trust(t, ss, ssPeerID(0), 3, ssPeerID(1))
	for n := 2; n < 2+maxSuperSeedRefused; n++ {
		if dec, _ := ss.claim(ssPeerID(n), 3, true); dec != ssRefuse {
			t.Fatalf("peer %d: decision %d, want refused", n, dec)
		}
	}
	if dec, _ := ss.claim(ssPeerID(2+maxSuperSeedRefused), 3, true); dec != ssServe {
		t.Fatalf("peer past the refused cap: decision %d, want served", dec)
	}
	if c := s.SuperSeedCounters(); c.Refused != maxSuperSeedRefused || c.Overflowed != 1 {
		t.Fatalf("counters %+v, want %d refused and 1 overflow", c, maxSuperSeedRefused)
	}
	for n := 3 + maxSuperSeedRefused; len(ss.peers) < maxSuperSeedPeers; n++ {
		ss.claim(ssPeerID(n), 0, true)
	}
	if dec, _ := ss.claim(ssPeerID(100000), 3, true); dec != ssServe {
		t.Fatalf("peer past the tracked cap: decision %d, want served", dec)
	}
	if c := s.SuperSeedCounters(); c.Overflowed != 2 {
		t.Fatalf("%d overflows, want the tracked-peer cap counted too", c.Overflowed)
	}
}
