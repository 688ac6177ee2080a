package discovery

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// addPeer puts p in the table, replacing an entry of the same key at
// another address (the peer moved).
func (c *Core) addPeer(now time.Time, p Peer) {
	if old, ok := c.byKey[p.Key]; ok {
		c.removePeer(old, "moved")
	}
	if old, ok := c.peers[p.Addr]; ok {
		c.removePeer(old.Addr, "replaced")
	}
	p.ID = p.Key.PeerID()
	p.Added, p.LastSeen = now, now
	c.peers[p.Addr] = &p
	c.byKey[p.Key] = p.Addr
	delete(c.walkable, p.Addr)
	c.stats.PeersAdded++
	c.emitEvent(Event{Kind: PeerAdded, Peer: p})
}

func (c *Core) removePeer(addr netip.AddrPort, reason string) {
	p, ok := c.peers[addr]
	if !ok {
		return
	}
	delete(c.peers, addr)
	delete(c.byKey, p.Key)
	delete(c.lastPing, addr)
	c.emitEvent(Event{Kind: PeerRemoved, Peer: *p, Reason: reason})
}

func (c *Core) isSelf(a netip.AddrPort) bool {
	if a == c.lan || a == c.wan {
		return true
	}
	if c.lan.Addr().IsUnspecified() && a.Port() == c.lan.Port() {
		lan, _ := c.addrsFor(a)
		return lan == a
	}
	return false
}

// believeWAN reports whether a, our address as a responder saw it, may
// become our WAN address. As py-ipv8 does: any unicast address outside
// the subnets of our own interfaces (Config.InLANSubnet), so that a NAT
// whose outside is itself private (a carrier NAT, a test network) is
// still learned. Without InLANSubnet, only public addresses are believed.
func (c *Core) believeWAN(a netip.Addr) bool {
	a = a.Unmap()
	if c.cfg.InLANSubnet == nil {
		return isPublic(a)
	}
	return a.IsGlobalUnicast() && !c.cfg.InLANSubnet(a)
}

// isPublic reports whether a is a routable unicast address, one a
// response may teach us as our WAN address.
func isPublic(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate()
}

func sortAddrs(s []netip.AddrPort) {
	slices.SortFunc(s, func(a, b netip.AddrPort) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Port(), b.Port())
	})
}
