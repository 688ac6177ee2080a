package dhtsim

import (
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/dht"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

// MakeLiar turns n into an adversary. It still answers pings (so it stays in
// routing tables), but answers every find node and get providers with 20
// made-up contacts very close to the target at addresses where nobody
// listens, plus (for get providers) a provider record with a forged
// signature; it acknowledges add provider and stores nothing.
func (s *Sim) MakeLiar(n *Node) {
	n.liar = true
	s.hashEvent('A', n.Addr, n.Addr, nil)
}

// lie answers one delivered payload as a liar.
func (s *Sim) lie(n *Node, ev *event) {
	m, err := dht.DecodeMessage(ev.payload)
	if err != nil {
		return
	}
	reply := dht.Message{TxID: m.TxID}
	switch m.Type {
	case dht.MsgPing:
		reply.Type, reply.Observed = dht.MsgPong, ev.from.Addr
	case dht.MsgAddProvider:
		reply.Type, reply.Status = dht.MsgAddProviderAck, dht.AckStored
	case dht.MsgFindNode, dht.MsgGetProviders:
		reply.Type = dht.MsgNodes
		for range 20 {
			id := identity.PeerID(m.Target)
			for i := 20; i < 32; i++ { // shares 160 bits with the target
				id[i] = byte(s.rng.Uint32())
			}
			ip := netip.AddrFrom4([4]byte{127, 255, byte(s.rng.Uint32()), byte(s.rng.Uint32())})
			reply.Contacts = append(reply.Contacts, dht.Contact{ID: id, Addr: netip.AddrPortFrom(ip, 4000)})
		}
		if m.Type == dht.MsgGetProviders {
			reply.Type = dht.MsgProviders
			reply.Token = []byte("liar-token-16byt")
			r := dht.Record{Content: m.Target, Key: n.Key.Public(), Expires: s.now.Add(time.Hour).Unix(),
				Addrs: []netip.AddrPort{n.Addr}}
			for i := range r.Sig {
				r.Sig[i] = byte(s.rng.Uint32())
			}
			reply.Records = []dht.Record{r}
		}
	default:
		return
	}
	s.deliverLater(n, ev.from, reply.Append(nil))
}
