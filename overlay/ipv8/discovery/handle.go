package discovery

import (
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// Framing reports how the walk's messages are framed (the driver's
// ipv8.Community.Framing).
func Framing(msgID byte) ipv8.Framing {
	switch msgID {
	case ipv8.MsgIntroRequest, ipv8.MsgIntroRequestOld,
		ipv8.MsgIntroResponse, ipv8.MsgIntroResponseOld,
		ipv8.MsgPuncture, ipv8.MsgPunctureOld:
		return ipv8.FramingSigned
	case ipv8.MsgPunctureRequest, ipv8.MsgPunctureRequestOld, ipv8.MsgPing, ipv8.MsgPong:
		return ipv8.FramingUnsigned
	}
	return ipv8.FramingUnknown
}

// Handle processes one message of the walk's community, received at now.
// The endpoint has checked its framing and signature.
func (c *Core) Handle(now time.Time, m *ipv8.Message) {
	m.From = unmap(m.From)
	if m.Signed {
		if m.Key == c.self {
			return // our own datagram, reflected
		}
		if p, ok := c.peers[m.From]; ok && p.Key == m.Key {
			p.LastSeen = now
		}
	}
	var err error
	switch m.ID {
	case ipv8.MsgIntroRequest, ipv8.MsgIntroRequestOld:
		var r ipv8.IntroRequest
		if r, err = ipv8.DecodeIntroRequest(m.ID, m.Payload); err == nil {
			c.onIntroRequest(now, m, &r)
		}
	case ipv8.MsgIntroResponse, ipv8.MsgIntroResponseOld:
		var r ipv8.IntroResponse
		if r, err = ipv8.DecodeIntroResponse(m.ID, m.Payload); err == nil {
			c.onIntroResponse(now, m, &r)
		}
	case ipv8.MsgPunctureRequest, ipv8.MsgPunctureRequestOld:
		var r ipv8.PunctureRequest
		if r, err = ipv8.DecodePunctureRequest(m.ID, m.Payload); err == nil {
			c.onPunctureRequest(m, &r)
		}
	case ipv8.MsgPuncture, ipv8.MsgPunctureOld:
		var r ipv8.Puncture
		if r, err = ipv8.DecodePuncture(m.ID, m.Payload); err == nil {
			c.onPuncture(now, m, &r)
		}
	case ipv8.MsgPing:
		var r ipv8.Ping
		if r, err = ipv8.DecodePing(m.Payload); err == nil {
			c.emit(Send{To: m.From, MsgID: ipv8.MsgPong, Unsigned: true, Payload: r.Append(nil)})
			c.stats.PongsSent++
			if _, ok := c.peers[m.From]; !ok && len(c.peers) < c.cfg.TargetPeers {
				// It counts us as a peer but we lost it (a lost
				// response): walking to it makes the link symmetric.
				c.learn(now, m.From, false)
			}
		}
	case ipv8.MsgPong:
		var r ipv8.Ping
		if r, err = ipv8.DecodePing(m.Payload); err == nil {
			c.onPong(now, m, r)
		}
	}
	if err != nil {
		c.stats.Malformed++
	}
}

// onIntroRequest adds the requester to the table when there is room,
// answers it with an introduction to a random other peer, and asks that
// peer to puncture towards the requester.
func (c *Core) onIntroRequest(now time.Time, m *ipv8.Message, r *ipv8.IntroRequest) {
	from := m.From
	newStyle := r.SupportsNewStyle || from.Addr().Is6()
	known := false
	if p, ok := c.peers[from]; ok && p.Key == m.Key {
		known = true
		p.LAN, p.WAN, p.NewStyle = r.SourceLAN, r.SourceWAN, newStyle
	}
	full := !known && len(c.peers) >= c.cfg.MaxPeers
	if !known && !full {
		c.addPeer(now, Peer{Key: m.Key, Addr: from, LAN: r.SourceLAN, WAN: r.SourceWAN, NewStyle: newStyle, Bootstrap: c.bootstrap[from]})
	}
	intro := c.pickIntroduction(from, newStyle)
	lan, wan := c.addrsFor(from)
	resp := ipv8.IntroResponse{
		NewStyle:         newStyle,
		Destination:      from,
		SourceLAN:        lan,
		SourceWAN:        wan,
		SupportsNewStyle: true,
		PeerLimitReached: full,
		Identifier:       r.Identifier,
	}
	if intro != nil {
		resp.IntroLAN, resp.IntroWAN = intro.LAN, intro.Addr
		if !newStyle && !resp.IntroLAN.Addr().Unmap().Is4() {
			resp.IntroLAN = netip.AddrPort{}
		}
		resp.IntroSupportsNewStyle = intro.NewStyle
	}
	p, err := resp.Append(nil)
	if err != nil {
		return
	}
	c.emit(Send{To: from, MsgID: resp.MsgID(), Payload: p})
	c.stats.IntroRequestsAnswered++
	if full {
		c.stats.IntroRequestsRefused++
	}
	if intro == nil {
		return
	}
	pr := ipv8.PunctureRequest{
		NewStyle:   intro.NewStyle || from.Addr().Is6(),
		LANWalker:  r.SourceLAN,
		WANWalker:  from,
		Identifier: r.Identifier,
	}
	if !pr.NewStyle && !pr.LANWalker.Addr().Unmap().Is4() {
		pr.LANWalker = netip.AddrPort{}
	}
	if p, err := pr.Append(nil); err == nil {
		c.emit(Send{To: intro.Addr, MsgID: pr.MsgID(), Unsigned: true, Payload: p})
		c.stats.PunctureRequestsSent++
	}
}

// pickIntroduction returns a random peer other than the requester, one
// whose address the response's form can carry, or nil.
func (c *Core) pickIntroduction(requester netip.AddrPort, newStyle bool) *Peer {
	cands := make(map[netip.AddrPort]struct{}, len(c.peers))
	for a := range c.peers {
		if a != requester && (newStyle || a.Addr().Is4()) {
			cands[a] = struct{}{}
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return c.peers[pickKey(c.rng, cands)]
}

// onIntroResponse matches a response to its request, learns our WAN
// address from it, adds the responder as a peer (unless it is a
// bootstrap node or full) and remembers the introduced peer as walkable.
func (c *Core) onIntroResponse(now time.Time, m *ipv8.Message, r *ipv8.IntroResponse) {
	pend, ok := c.pending[r.Identifier]
	if !ok || pend.to != m.From {
		c.stats.Unsolicited++
		return
	}
	delete(c.pending, r.Identifier)
	c.stats.IntroResponses++
	if d := unmap(r.Destination); d.IsValid() && !ipv8.ZeroAddr(d) && c.believeWAN(d.Addr()) {
		c.wan = d
	}
	newStyle := r.NewStyle || r.SupportsNewStyle
	boot := c.bootstrap[m.From]
	if boot {
		c.newStyle[m.From] = newStyle
	}
	if !r.PeerLimitReached {
		if p, ok := c.peers[m.From]; ok && p.Key == m.Key {
			p.LAN, p.WAN, p.NewStyle = r.SourceLAN, r.SourceWAN, newStyle
		} else if len(c.peers) < c.cfg.MaxPeers {
			c.addPeer(now, Peer{Key: m.Key, Addr: m.From, LAN: r.SourceLAN, WAN: r.SourceWAN, NewStyle: newStyle, Bootstrap: boot})
		}
	}
	c.learn(now, c.introTarget(unmap(r.IntroLAN), unmap(r.IntroWAN)), r.IntroSupportsNewStyle)
	if r.PeerLimitReached && !c.bootstrap[m.From] && len(c.peers) < c.cfg.TargetPeers {
		// A full node still introduces: asking it again later gives
		// another introduction, so a node with few peers does not
		// depend on one chain of introductions that a lost datagram
		// breaks.
		c.learn(now, m.From, newStyle)
	}
}

// introTarget picks the address to walk to for an introduced peer: its
// LAN address when it shares our WAN IP (the same NAT), else its WAN
// address.
func (c *Core) introTarget(lan, wan netip.AddrPort) netip.AddrPort {
	switch {
	case ipv8.ZeroAddr(wan):
		return lan
	case wan.Addr() == c.wan.Addr() && !ipv8.ZeroAddr(lan):
		return lan
	}
	return wan
}

// learn remembers addr as walkable unless it is useless or known.
func (c *Core) learn(now time.Time, addr netip.AddrPort, newStyle bool) {
	if ipv8.ZeroAddr(addr) || addr.Port() == 0 || c.isSelf(addr) || c.bootstrap[addr] {
		return
	}
	if _, ok := c.peers[addr]; ok {
		return
	}
	if _, ok := c.walkable[addr]; !ok && len(c.walkable) >= c.cfg.MaxWalkable {
		delete(c.walkable, pickKey(c.rng, c.walkable))
	}
	c.walkable[addr] = walkable{newStyle: newStyle, added: now}
}

// onPunctureRequest sends the signed puncture a known peer asked for. It
// ignores requests from addresses that are neither peers nor bootstrap
// nodes, so that strangers cannot aim our punctures at third parties.
func (c *Core) onPunctureRequest(m *ipv8.Message, r *ipv8.PunctureRequest) {
	if _, ok := c.peers[m.From]; !ok && !c.bootstrap[m.From] {
		c.stats.PunctureRequestsIgnored++
		return
	}
	target := c.introTarget(unmap(r.LANWalker), unmap(r.WANWalker))
	if ipv8.ZeroAddr(target) || target.Port() == 0 || c.isSelf(target) {
		return
	}
	lan, wan := c.addrsFor(target)
	pu := ipv8.Puncture{
		NewStyle:   r.NewStyle || target.Addr().Is6(),
		SourceLAN:  lan,
		SourceWAN:  wan,
		Identifier: r.Identifier,
	}
	p, err := pu.Append(nil)
	if err != nil {
		return
	}
	c.emit(Send{To: target, MsgID: pu.MsgID(), Payload: p})
	c.stats.PuncturesSent++
}

// onPuncture notes the sender: a punctured NAT is the cue to walk to it.
func (c *Core) onPuncture(now time.Time, m *ipv8.Message, r *ipv8.Puncture) {
	c.stats.PuncturesReceived++
	c.learn(now, m.From, r.NewStyle)
}

func (c *Core) onPong(now time.Time, m *ipv8.Message, r ipv8.Ping) {
	p, ok := c.pings[r.Identifier]
	if !ok || p.to != m.From {
		c.stats.Unsolicited++
		return
	}
	delete(c.pings, r.Identifier)
	if peer, ok := c.peers[m.From]; ok {
		peer.LastSeen = now
	}
}
