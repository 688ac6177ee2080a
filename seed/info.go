package seed

import (
	"context"
	"encoding/hex"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
)

// Status returns the node's summary; BytesDown counts the downloads in
// progress too.
func (n *Node) Status(ctx context.Context) (Status, error) {
	up, _ := n.srv.Stats()
	var downloads []DownloadStatus
	down := n.metrics.BytesDown.Load()
	n.mu.Lock()
	for id, a := range n.active {
		ds := DownloadStatus{ID: id.String(), Name: a.name, Stage: a.stage.Load().(string), Background: a.background}
		if dl := a.download(); dl != nil {
			p := dl.Progress()
			ds.Done, ds.Received, ds.Total, ds.Peers = p.Verified, p.Received, p.Size, p.Peers
			ds.Rate, ds.Rejected, ds.Banned = int64(p.Rate), p.BadChunks, p.Banned
			ds.ETASeconds = p.ETA.Round(time.Second).Seconds()
			if m := dlManifest(dl); m != nil {
				ds.Name = m.Name
			}
			down += p.Received
		}
		downloads = append(downloads, ds)
	}
	n.mu.Unlock()
	slices.SortFunc(downloads, func(a, b DownloadStatus) int { return strings.Compare(a.ID, b.ID) })
	peers, _ := n.Peers(ctx)
	var connected []PeerInfo
	for _, p := range peers {
		if p.Path != "" {
			connected = append(connected, p)
		}
	}
	return Status{
		Downloads:      downloads,
		PeerID:         n.PeerID().String(),
		Listen:         n.Addr().String(),
		TCP:            n.ov.TCPAddr().IsValid(),
		API:            n.apiAddr,
		Gateway:        n.gw.addr,
		Peers:          len(peers),
		Connected:      connected,
		Items:          len(n.lib.list()),
		UptimeSeconds:  int64(time.Since(n.started).Seconds()),
		BytesUp:        up,
		BytesDown:      down,
		Active:         len(downloads),
		ParityRebuilds: n.rebuildingCount(),
		Transient:      n.cfg.Transient,
	}, nil
}

// Items lists the library, oldest first, with each item's link, then the
// gateway cache's items (KindCache), least recently read first.
func (n *Node) Items(ctx context.Context) ([]Item, error) {
	items := append(n.lib.list(), n.gwItems()...)
	for i := range items {
		if id, err := chunker.ParseID(items[i].ID); err == nil {
			items[i].Link = n.linkOf(id, items[i].Name)
			items[i].Parity = n.parityState(id, items[i].Kind)
		}
	}
	return items, nil
}

// Identity describes the node's keys.
func (n *Node) Identity(ctx context.Context) (IDInfo, error) {
	pk := n.kp.Public()
	mid := pk.Mid()
	return IDInfo{
		PeerID:    n.PeerID().String(),
		PublicKey: hex.EncodeToString(pk[:]),
		Mid:       hex.EncodeToString(mid[:]),
		Listen:    n.Addr().String(),
	}, nil
}

// Peers lists the peers discovery knows and those with an open connection,
// with the path of that connection.
func (n *Node) Peers(ctx context.Context) ([]PeerInfo, error) {
	idx := map[string]int{}
	out := []PeerInfo{}
	for _, p := range n.disc.Peers() {
		id := p.ID.String()
		if _, ok := idx[id]; !ok {
			idx[id] = len(out)
			out = append(out, PeerInfo{PeerID: id, Addr: p.Addr.String()})
		}
	}
	lans := localPrefixes()
	for _, c := range n.ov.Conns() {
		id := c.PeerID().String()
		i, ok := idx[id]
		if !ok {
			i = len(out)
			idx[id] = i
			out = append(out, PeerInfo{PeerID: id, Addr: c.RemoteAddr().String()})
		}
		if out[i].Path == "" {
			out[i].Path = n.pathTo(c.RemoteAddr(), lans)
			out[i].Conn = c.RemoteAddr().String()
		}
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return strings.Compare(a.PeerID, b.PeerID) })
	return out, nil
}

// pathTo names the path of a connection to remote: relayed through a relay
// peer, on a network one of this machine's interfaces is on, or direct.
func (n *Node) pathTo(remote netip.AddrPort, lans []netip.Prefix) string {
	if n.relayed(remote) {
		return PathRelayed
	}
	ip := remote.Addr().Unmap()
	if ip.IsLoopback() {
		return PathLAN
	}
	for _, p := range lans {
		if p.Contains(ip) && (ip.IsPrivate() || ip.IsLinkLocalUnicast()) {
			return PathLAN
		}
	}
	return PathDirect
}

// localPrefixes lists the networks of this machine's interfaces.
func localPrefixes() []netip.Prefix {
	var out []netip.Prefix
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok {
			ip, ok := netip.AddrFromSlice(p.IP)
			ones, _ := p.Mask.Size()
			if ok {
				out = append(out, netip.PrefixFrom(ip.Unmap(), ones).Masked())
			}
		}
	}
	return out
}

// parityState is Item.Parity for id.
func (n *Node) parityState(id chunker.ContentID, kind ItemKind) string {
	if kind != KindDownloaded {
		return ""
	}
	n.mu.Lock()
	it := n.seeding[id]
	n.mu.Unlock()
	switch {
	case it == nil || it.MissingParity() == 0:
		return ""
	case n.cfg.Transient:
		return ParityPending
	case n.parity.hasFailed(id):
		return ParityFailed
	}
	return ParityRebuilding
}
