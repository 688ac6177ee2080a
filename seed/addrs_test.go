package seed

import (
	"net/netip"
	"testing"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// TestAddrBookBounds: what peers can make the node hold for dials is
// bounded (peers, addresses per peer), deduplicated, and unusable
// addresses are not kept.
func TestAddrBookBounds(t *testing.T) {
	var b addrBook
	id := identity.PeerID{1}
	for i := range 3 * maxAddrsPerPeer {
		b.add(id, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), 7745))
	}
	b.add(id, netip.AddrPort{}, netip.MustParseAddrPort("0.0.0.0:7745"), netip.MustParseAddrPort("198.18.0.99:0"))
	got := b.get(id)
	if len(got) != maxAddrsPerPeer {
		t.Fatalf("%d addresses kept for one peer, want %d", len(got), maxAddrsPerPeer)
	}
	if last := got[len(got)-1]; last.Addr() != netip.AddrFrom4([4]byte{198, 18, 0, byte(3*maxAddrsPerPeer - 1)}) {
		t.Fatalf("newest address %s not kept (the oldest go first)", last)
	}
	b.add(id, got[0])
	if len(b.get(id)) != maxAddrsPerPeer {
		t.Fatal("a known address was added twice")
	}
	for i := range maxBookPeers + 100 {
		b.add(identity.PeerID{byte(i), byte(i >> 8), 2}, netip.MustParseAddrPort("198.18.1.1:7745"))
	}
	if n := len(b.m); n > maxBookPeers {
		t.Fatalf("the book holds %d peers, cap %d", n, maxBookPeers)
	}
}

// TestAdvertisedBoundAddress: a node bound to a specific address
// advertises it (and no guess built from a learnt IP and its local port).
func TestAdvertisedBoundAddress(t *testing.T) {
	n := startNode(t)
	adv := n.advertised()
	if len(adv) == 0 || adv[len(adv)-1] != n.Addr() {
		t.Fatalf("advertised %v, want it to end with the bound address %s", adv, n.Addr())
	}
}
