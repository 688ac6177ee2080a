package seed

import (
	"context"

	"encoding/hex"
	"github.com/shoal-p2p/shoal/chunker"
	"net/http"
	"slices"
	"strings"
	"time"
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
	return Status{
		Downloads:     downloads,
		PeerID:        n.PeerID().String(),
		Listen:        n.Addr().String(),
		API:           n.apiAddr,
		Peers:         len(peers),
		Items:         len(n.lib.list()),
		UptimeSeconds: int64(time.Since(n.started).Seconds()),
		BytesUp:       up,
		BytesDown:     down,
		Active:        len(downloads),
		Transient:     n.cfg.Transient,
	}, nil
}

// Items lists the library, oldest first, with each item's link.
func (n *Node) Items(ctx context.Context) ([]Item, error) {
	items := n.lib.list()
	for i := range items {
		if id, err := chunker.ParseID(items[i].ID); err == nil {
			items[i].Link = n.linkOf(id, items[i].Name)
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

// Peers lists the peers discovery knows and those with an open connection.
func (n *Node) Peers(ctx context.Context) ([]PeerInfo, error) {
	seen := map[string]bool{}
	out := []PeerInfo{}
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
	return out, nil
}

func (n *Node) writeMetrics(w http.ResponseWriter) error {
	up, _ := n.srv.Stats()
	n.metrics.BytesUp.Store(up)
	peers, _ := n.Peers(context.Background())
	return n.metrics.WritePrometheus(w, len(peers), len(n.lib.list()))
}
