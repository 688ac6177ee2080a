package discovery_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/ipv8/discovery"
)

// TestWorldOverlayNodes runs the walk on real overlay Nodes and real
// loopback sockets: IPv8 datagrams share each node's socket with QUIC.
// Real time runs here (sockets cannot join a synctest bubble), so the
// churn timeouts are generous enough for a loaded machine and the race
// detector; the test waits on conditions, not on the clock.
func TestWorldOverlayNodes(t *testing.T) {
	const size = 30
	cfg := discovery.Config{
		TargetPeers:       10,
		MaxPeers:          20,
		WalkInterval:      50 * time.Millisecond,
		IntroTimeout:      time.Second,
		PingAfter:         5 * time.Second,
		DropAfter:         15 * time.Second,
		BootstrapInterval: 500 * time.Millisecond,
	}
	type member struct {
		node   *overlay.Node
		walk   *discovery.Community
		cancel context.CancelFunc
		wg     sync.WaitGroup
	}
	var members []*member
	defer func() {
		for _, m := range members {
			m.cancel()
			m.wg.Wait()
		}
	}()
	for i := range size {
		n, err := overlay.New(overlay.Config{ListenAddr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		c := cfg // LANAddress unset: the walk takes the overlay socket's
		c.Seed = uint64(i + 1)
		if i > 0 {
			c.Bootstrap = []netip.AddrPort{members[0].node.LocalAddr()}
		}
		w, err := discovery.New(n.Endpoint(), c)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		m := &member{node: n, walk: w, cancel: cancel}
		m.wg.Go(func() { _ = n.Run(ctx) })
		m.wg.Go(func() { _ = w.Run(ctx) })
		members = append(members, m)
	}
	testwait.Eventually(t, 60*time.Second, fmt.Sprintf("every overlay node has %d peers", cfg.TargetPeers), func() error {
		for i, m := range members {
			if k := m.walk.NumPeers(); k < cfg.TargetPeers {
				return fmt.Errorf("node %d has %d peers", i, k)
			}
		}
		return nil
	})
	for i, m := range members {
		for _, p := range m.walk.Peers() {
			if p.LAN != p.Addr {
				t.Errorf("node %d: peer %s announced LAN %s, want its socket's address", i, p.Addr, p.LAN)
			}
		}
	}
	var bad uint64
	for _, m := range members {
		s := m.node.Endpoint().Stats()
		bad += s.DroppedBadSignature + s.DroppedMalformed
	}
	if bad != 0 {
		t.Errorf("%d datagrams between honest nodes dropped as bad", bad)
	}
}
