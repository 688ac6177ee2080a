package discovery_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/ipv8/discovery"
)

// TestWorldOverlayNodes runs the walk on real overlay Nodes: IPv8
// datagrams share each node's socket with QUIC.
func TestWorldOverlayNodes(t *testing.T) {
	const size = 50
	scale := time.Duration(1)
	if raceEnabled {
		scale = 6
	}
	cfg := discovery.Config{
		TargetPeers:       20,
		MaxPeers:          30,
		WalkInterval:      scale * 40 * time.Millisecond,
		IntroTimeout:      scale * 400 * time.Millisecond,
		PingAfter:         scale * 800 * time.Millisecond,
		DropAfter:         scale * 2 * time.Second,
		BootstrapInterval: scale * 400 * time.Millisecond,
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
		c := cfg
		c.LANAddress = n.LocalAddr()
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
	deadline := time.Now().Add(scale * 30 * time.Second)
	for {
		var err error
		for i, m := range members {
			if k := m.walk.NumPeers(); k < cfg.TargetPeers {
				err = fmt.Errorf("node %d has %d peers", i, k)
				break
			}
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("overlay nodes did not reach %d peers: %v", cfg.TargetPeers, err)
		}
		time.Sleep(20 * time.Millisecond)
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
