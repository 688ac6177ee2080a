package seed

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/relay"
)

// Relaying (issue 17, docs/nat.md): a node with Config.Relay forwards QUIC
// packets between peers that cannot reach each other and announces itself
// in the DHT under relay.ServiceKey; a node with Config.UseRelays registers
// with up to two relays it finds there (which keeps its NAT binding
// towards them open) and, when a peer does not answer at any direct
// address within relayDelay, also dials it through each of them. QUIC's
// handshake stays end to end: the relay forwards ciphertext only.

// relayDelay is how long direct dials run alone before relayed ones join.
const relayDelay = 1500 * time.Millisecond

// wrapRelay wraps pc for relaying when the config asks for it.
func (n *Node) wrapRelay(pc net.PacketConn) (net.PacketConn, error) {
	if !n.cfg.Relay && !n.cfg.UseRelays {
		return pc, nil
	}
	rc, err := relay.New(pc, relay.Config{KeyPair: n.kp, Serve: n.cfg.Relay})
	if err != nil {
		return nil, err
	}
	n.rc = rc
	return rc, nil
}

// keepRelays announces this relay, finds relays and keeps the
// registrations alive, until ctx ends.
func (n *Node) keepRelays(ctx context.Context) {
	if n.rc == nil {
		return
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	announced := false
	var lastLookup, lastUpgrade time.Time
	for {
		n.rc.Maintain()
		if time.Since(lastUpgrade) >= upgradeEvery {
			lastUpgrade = time.Now()
			n.upgradeRelayed(ctx)
		}
		if n.cfg.Relay && !announced && n.dht.TableSize() > 0 {
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			announced = n.dht.Provide(pctx, relay.ServiceKey) == nil // the DHT republishes it
			cancel()
		}
		if n.cfg.UseRelays && len(n.rc.Relays()) == 0 && time.Since(lastLookup) > 10*time.Second && n.dht.TableSize() > 0 {
			lastLookup = time.Now()
			n.findRelays(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// upgradeEvery is how often relayed connections try a direct path.
const (
	upgradeEvery = 10 * time.Second
	maxUpgrades  = 4
)

// upgradeRelayed tries, for every relayed connection this node dialled,
// each direct address known for the peer; when one answers, the relayed
// connection is closed and new streams go direct (a later puncture
// succeeded: discovery keeps introducing and puncturing).
// At most maxUpgrades connections are tried per round, so that the round
// (3 s per address at worst, at most maxParallelDials addresses each) never delays the registrations' renewal much.
func (n *Node) upgradeRelayed(ctx context.Context) {
	tried := 0
	for _, c := range n.ov.Conns() {
		if !relay.IsVirtual(c.RemoteAddr()) || !c.Outbound() || tried >= maxUpgrades {
			continue
		}
		tried++
		dials := 0
		for _, a := range n.addrsOf(c.PeerID(), netip.AddrPort{}) {
			if relay.IsVirtual(a) || dials >= maxParallelDials {
				continue
			}
			dials++
			dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			d, err := n.ov.DialNew(dctx, c.PeerID(), a)
			cancel()
			if err == nil && !relay.IsVirtual(d.RemoteAddr()) {
				n.metrics.RelayUpgrades.Add(1)
				n.log.Debug("relayed connection upgraded to direct", "peer", c.PeerID().Short(), "addr", a)
				c.Close()
				break
			}
		}
	}
}

// findRelays registers with up to two relays the DHT lists.
func (n *Node) findRelays(ctx context.Context) {
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	found := 0
	for p := range n.dht.FindProviders(fctx, relay.ServiceKey) {
		if p.ID == n.PeerID() || len(p.Addrs) == 0 {
			continue
		}
		if n.rc.Register(p.Addrs[0]) == nil {
			found++
		}
		if found == 2 {
			return
		}
	}
}

// dialRelayed dials peer through each relay this node is registered with
// and returns the first connection.
func (n *Node) dialRelayed(ctx context.Context, peer identity.PeerID) (*overlay.Conn, error) {
	relays := n.rc.Relays()
	if len(relays) == 0 {
		return nil, errNoRelay
	}
	var last error
	for _, r := range relays {
		v, err := n.rc.Connect(ctx, r, peer)
		if err != nil {
			last = err
			continue
		}
		c, err := n.ov.Dial(ctx, peer, v)
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// relayed reports whether remote is a relayed route's address.
func (n *Node) relayed(remote netip.AddrPort) bool { return relay.IsVirtual(remote) }

var errNoRelay = errors.New("seed: registered with no relay")
