package seed

import (
	"encoding/hex"
	"net/http"
	"slices"
	"time"
)

// Status returns the node's summary.
func (n *Node) Status() Status {
	up, _ := n.srv.Stats()
	n.mu.Lock()
	active := len(n.active)
	n.mu.Unlock()
	return Status{
		PeerID:    n.PeerID().String(),
		Listen:    n.Addr().String(),
		API:       n.apiAddr,
		Peers:     len(n.Peers()),
		Items:     len(n.lib.list()),
		Uptime:    time.Since(n.started).Truncate(time.Second).String(),
		BytesUp:   up,
		BytesDown: n.metrics.BytesDown.Load(),
		Active:    active,
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

func (n *Node) writeMetrics(w http.ResponseWriter) error {
	up, _ := n.srv.Stats()
	n.metrics.BytesUp.Store(up)
	return n.metrics.WritePrometheus(w, len(n.Peers()), len(n.lib.list()))
}
