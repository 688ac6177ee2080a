package seed

import (
	"encoding/hex"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Status returns the node's summary.
func (n *Node) Status() Status {
	up, _ := n.srv.Stats()
	var downloads []DownloadStatus
	n.mu.Lock()
	for id, a := range n.active {
		p := a.dl.Progress()
		ds := DownloadStatus{ID: id.String(), Name: a.name, Done: p.Verified, Total: p.Size, Peers: p.Peers,
			Rate: int64(p.Rate), Rejected: p.BadChunks, Banned: p.Banned}
		if c := a.dl.Chunker(); c != nil {
			ds.Name = c.Manifest().Name
		}
		if p.ETA > 0 {
			ds.ETA = p.ETA.Round(time.Second).String()
		}
		downloads = append(downloads, ds)
	}
	n.mu.Unlock()
	slices.SortFunc(downloads, func(a, b DownloadStatus) int { return strings.Compare(a.ID, b.ID) })
	return Status{
		Downloads: downloads,
		PeerID:    n.PeerID().String(),
		Listen:    n.Addr().String(),
		API:       n.apiAddr,
		Peers:     len(n.Peers()),
		Items:     len(n.lib.list()),
		Uptime:    time.Since(n.started).Truncate(time.Second).String(),
		BytesUp:   up,
		BytesDown: n.metrics.BytesDown.Load(),
		Active:    len(downloads),
	}
}

// Items lists the library, oldest first.
func (n *Node) Items() []Item { return n.lib.list() }

// Identity describes the node's keys.
func (n *Node) Identity() IDInfo {
	pk := n.kp.Public()
	mid := pk.Mid()
	return IDInfo{
		PeerID:    n.PeerID().String(),
		PublicKey: hex.EncodeToString(pk[:]),
		Mid:       hex.EncodeToString(mid[:]),
		Listen:    n.Addr().String(),
	}
}

// Peers lists the peers discovery knows and those with an open connection,
// with the path of that connection.
func (n *Node) Peers() []PeerInfo {
	idx := map[string]int{}
	var out []PeerInfo
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
	return out
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

// relayed reports whether remote is a relayed path's address.
func (n *Node) relayed(remote netip.AddrPort) bool { return false }
