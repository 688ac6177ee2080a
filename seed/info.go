package seed

import (
	"encoding/hex"
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

// Peers lists the peers discovery knows and those with an open connection.
func (n *Node) Peers() []PeerInfo {
	seen := map[string]bool{}
	var out []PeerInfo
	for _, p := range n.disc.Peers() {
		id := p.ID.String()
		if !seen[id] {
			seen[id] = true
			out = append(out, PeerInfo{PeerID: id, Addr: p.Addr.String()})
		}
	}
	for _, c := range n.ov.Conns() {
		id := c.PeerID().String()
		if !seen[id] {
			seen[id] = true
			out = append(out, PeerInfo{PeerID: id, Addr: c.RemoteAddr().String()})
		}
	}
	slices.SortFunc(out, func(a, b PeerInfo) int {
		if a.PeerID < b.PeerID {
			return -1
		}
		return 1
	})
	return out
}
