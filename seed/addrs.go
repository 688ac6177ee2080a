package seed

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/dht"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Addresses, both ways (issue 17):
//
//   - What the node advertises (link hints, DHT provider records) is what
//     peers can reach: the public address a peer saw our packets come from
//     (discovery's WAN address, with the port the NAT gave us, never our
//     local port glued to a learnt IP), then the bound address when it is a
//     specific one, or for a wildcard bind this machine's own addresses (a
//     peer behind the same NAT reaches those, the shared public one it
//     cannot). At most dht.MaxRecordAddrs.
//   - A download dials every address it knows for a peer at once (the
//     link's hint, the DHT record, where discovery hears the peer from and
//     the LAN and WAN addresses the peer announced) and keeps the first
//     connection that answers.

// advertised returns the addresses to put in links and DHT records.
func (n *Node) advertised() []netip.AddrPort {
	la := n.ov.LocalAddr()
	var out []netip.AddrPort
	add := func(a netip.AddrPort) {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if a.IsValid() && !a.Addr().IsUnspecified() && a.Port() != 0 && !slices.Contains(out, a) && len(out) < dht.MaxRecordAddrs {
			out = append(out, a)
		}
	}
	if _, wan := n.disc.Addresses(); wan.IsValid() {
		add(wan)
	}
	if !la.Addr().IsUnspecified() {
		add(la)
		return out
	}
	for _, ip := range interfaceAddrs() {
		add(netip.AddrPortFrom(ip, la.Port()))
	}
	if len(out) == 0 {
		add(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), la.Port()))
	}
	return out
}

// interfaceAddrs lists this machine's non-loopback unicast addresses,
// IPv4 first.
func interfaceAddrs() []netip.Addr {
	var v4, v6 []netip.Addr
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		p, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(p.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		switch {
		case ip.IsLoopback() || !ip.IsGlobalUnicast():
		case ip.Is4():
			v4 = append(v4, ip)
		default:
			v6 = append(v6, ip)
		}
	}
	return append(v4, v6...)
}

// Bounds of the address book: what peers (DHT records, hints) can make the
// node hold.
const (
	maxBookPeers     = 4096 // peers; beyond, a random one is forgotten
	maxAddrsPerPeer  = 8    // addresses per peer; beyond, the oldest goes
	maxParallelDials = 4    // addresses dialled at once for one stream
)

// addrBook remembers the addresses heard for each peer, for dials.
type addrBook struct {
	mu sync.Mutex
	m  map[identity.PeerID][]netip.AddrPort
}

func (b *addrBook) add(id identity.PeerID, addrs ...netip.AddrPort) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[identity.PeerID][]netip.AddrPort{}
	}
	have := b.m[id]
	if have == nil && len(b.m) >= maxBookPeers {
		for k := range b.m { // map order: a random victim
			delete(b.m, k)
			break
		}
	}
	for _, a := range addrs {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if !a.IsValid() || a.Addr().IsUnspecified() || a.Port() == 0 || slices.Contains(have, a) {
			continue
		}
		if len(have) >= maxAddrsPerPeer {
			have = slices.Delete(have, 0, 1)
		}
		have = append(have, a)
	}
	b.m[id] = have
}

func (b *addrBook) get(id identity.PeerID) []netip.AddrPort {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.m[id])
}

// addrsOf returns every address known for peer, first the one given
// (when valid).
func (n *Node) addrsOf(peer identity.PeerID, first netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	if first.IsValid() {
		out = append(out, first)
	}
	add := func(a netip.AddrPort) {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if a.IsValid() && !a.Addr().IsUnspecified() && a.Port() != 0 && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, p := range n.disc.Peers() {
		if p.ID == peer {
			add(p.Addr)
			add(p.LAN)
			add(p.WAN)
		}
	}
	for _, a := range n.book.get(peer) {
		add(a)
	}
	return out
}

// dialAny returns a connection to peer: an open one, or the first of the
// dials to its known addresses (at most maxParallelDials at once) that
// succeeds.
func (n *Node) dialAny(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (*overlay.Conn, error) {
	if c := n.ov.Conn(peer); c != nil {
		return c, nil
	}
	addrs := n.addrsOf(peer, addr)
	useRelays := n.rc != nil && n.cfg.UseRelays
	if len(addrs) == 1 && !useRelays {
		return n.ov.Dial(ctx, peer, addr)
	}
	dctx, cancel := context.WithCancel(ctx)
	type result struct {
		c   *overlay.Conn
		err error
	}
	tries := len(addrs)
	if useRelays {
		tries++
	}
	results := make(chan result, tries)
	sem := make(chan struct{}, maxParallelDials)
	var wg sync.WaitGroup
	if useRelays {
		wg.Go(func() {
			t := time.NewTimer(relayDelay) // direct paths first
			defer t.Stop()
			select {
			case <-t.C:
			case <-dctx.Done():
				results <- result{nil, context.Cause(dctx)}
				return
			}
			c, err := n.dialRelayed(dctx, peer)
			results <- result{c, err}
		})
	}
	for _, a := range addrs {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-dctx.Done():
				results <- result{nil, context.Cause(dctx)}
				return
			}
			c, err := n.ov.Dial(dctx, peer, a)
			<-sem
			results <- result{c, err}
		})
	}
	defer func() {
		cancel() // the other dials end (quic-go's attempts run on, bounded by the dial timeout)
		wg.Wait()
	}()
	var errs []error
	for range tries {
		r := <-results
		if r.err == nil {
			return r.c, nil
		}
		errs = append(errs, r.err)
	}
	return nil, errors.Join(errs...)
}
