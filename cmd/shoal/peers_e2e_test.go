package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/seed"
)

// TestBootstrapPeerInShoalPeers: a node started with another node as its
// bootstrap address lists that node in `shoal peers` once it answered as a
// full peer (issue 16 item 4), and the bootstrap node lists it back. Real
// processes; no download, so no QUIC connection lists them instead.
func TestBootstrapPeerInShoalPeers(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	a := startNodeProc(t, bin, filepath.Join(root, "a", "data"))
	b := startNodeProc(t, bin, filepath.Join(root, "b", "data"), a.status.Listen)
	lists := func(p *proc, home string, want seed.Status) bool {
		out, errOut, code := shoal(t, bin, filepath.Join(root, home), "peers", "--json", "--data", p.data)
		if code != 0 {
			t.Fatalf("shoal peers: exit %d: %s", code, errOut)
		}
		var peers []seed.PeerInfo
		if err := json.Unmarshal([]byte(out), &peers); err != nil {
			t.Fatalf("shoal peers printed %q: %v", out, err)
		}
		for _, pi := range peers {
			if pi.PeerID == want.PeerID && pi.Addr == want.Listen {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(30 * time.Second)
	for !lists(b, "b", a.status) || !lists(a, "a", b.status) {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, b lists its bootstrap node a: %v; a lists b: %v", lists(b, "b", a.status), lists(a, "a", b.status))
		}
		time.Sleep(200 * time.Millisecond) // polling a condition
	}
}
