package discovery

import (
	"net/netip"
	"testing"

	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// FuzzCoreHandle feeds a core hostile messages of every walk message ID
// from a few addresses: nothing panics, the table stays within its
// bounds, and the core never sends to an address it was not given.
func FuzzCoreHandle(f *testing.F) {
	req := ipv8.IntroRequest{NewStyle: true, Destination: netip.MustParseAddrPort("10.0.0.2:7000"),
		SourceLAN: netip.MustParseAddrPort("10.0.0.1:7000"), SourceWAN: netip.MustParseAddrPort("10.0.0.1:7000"), Identifier: 5}
	p, _ := req.Append(nil)
	f.Add(ipv8.MsgIntroRequest, uint8(0), p)
	resp := ipv8.IntroResponse{NewStyle: true, IntroWAN: netip.MustParseAddrPort("10.9.9.9:1"), Identifier: 5}
	p, _ = resp.Append(nil)
	f.Add(ipv8.MsgIntroResponse, uint8(1), p)
	pr := ipv8.PunctureRequest{NewStyle: true, WANWalker: netip.MustParseAddrPort("10.8.8.8:2")}
	p, _ = pr.Append(nil)
	f.Add(ipv8.MsgPunctureRequest, uint8(2), p)
	f.Add(ipv8.MsgPing, uint8(0), []byte{0, 1})
	f.Fuzz(func(t *testing.T, msgID, from uint8, payload []byte) {
		c := newTNode(t, "10.0.0.2:7000", Config{MaxPeers: 2, TargetPeers: 1, MaxWalkable: 3}).core
		senders := []*tnode{
			newTNode(t, "10.0.0.1:7000", Config{}),
			newTNode(t, "10.0.0.3:7001", Config{}),
			newTNode(t, "10.0.0.4:7002", Config{}),
		}
		s := senders[int(from)%len(senders)]
		m := &ipv8.Message{From: s.addr, Community: CommunityID, ID: msgID, Signed: Framing(msgID) == ipv8.FramingSigned, Payload: payload}
		if m.Signed {
			m.Key = s.key
		}
		out := handle(c, t0, m)
		out2 := tick(c, t0.Add(DefaultWalkInterval))
		if c.NumPeers() > 2 || len(c.walkable) > 3 {
			t.Fatalf("%d peers, %d walkable; bounds 2 and 3", c.NumPeers(), len(c.walkable))
		}
		for _, snd := range append(out.Sends, out2.Sends...) {
			if !snd.To.IsValid() || snd.To.Port() == 0 || snd.To == c.lan {
				t.Fatalf("sent to %s", snd.To)
			}
		}
	})
}
