package discovery

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// node is one discovery node on an in-memory socket, with a real
// endpoint (signing and verifying every datagram) and a real driver.
type node struct {
	addr   netip.AddrPort
	ep     *ipv8.Endpoint
	c      *Community
	cancel context.CancelFunc
	wg     sync.WaitGroup
	conn   *memConn
	mu     sync.Mutex
	events []Event
}

func (n *node) stop() {
	n.cancel()
	n.wg.Wait()
	n.conn.Close()
}

// fastConfig shrinks every duration so that a test world converges in
// few walk steps; under synctest the durations are fake time, so they
// need no stretching under the race detector.
func fastConfig() Config {
	return Config{
		TargetPeers:       20,
		MaxPeers:          30,
		WalkInterval:      40 * time.Millisecond,
		IntroTimeout:      400 * time.Millisecond,
		PingAfter:         800 * time.Millisecond,
		DropAfter:         2 * time.Second,
		BootstrapInterval: 400 * time.Millisecond,
	}
}

// startNode runs an endpoint and a discovery community on a new socket
// of mn. cfg.LANAddress is left unset: New takes the socket's address.
func startNode(t *testing.T, mn *memNet, cfg Config, seed uint64) *node {
	t.Helper()
	conn := mn.listen()
	kp, err := identity.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := ipv8.NewEndpoint(conn, ipv8.Config{Key: kp})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{addr: conn.addr, ep: ep, conn: conn}
	cfg.Seed = seed
	cfg.OnEvent = func(e Event) {
		n.mu.Lock()
		n.events = append(n.events, e)
		n.mu.Unlock()
	}
	if n.c, err = New(ep, cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Go(func() { _ = ep.ServeConn(ctx, conn) })
	n.wg.Go(func() { _ = ep.Run(ctx) })
	n.wg.Go(func() { _ = n.c.Run(ctx) })
	return n
}

func TestWorld50(t *testing.T) {
	tests := []struct {
		name  string
		loss  float64
		delay time.Duration
	}{
		{"clean", 0, 0},
		{"2% loss 20ms delay", 0.02, 20 * time.Millisecond},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runWorld(t, newMemNet(uint64(i+1), tc.loss, tc.delay), 50) })
		})
	}
}

func runWorld(t *testing.T, mn *memNet, size int) {
	cfg := fastConfig()
	boot := startNode(t, mn, cfg, 1)
	nodes := []*node{boot}
	cfg.Bootstrap = []netip.AddrPort{boot.addr}
	for i := 1; i < size; i++ {
		nodes = append(nodes, startNode(t, mn, cfg, uint64(i+1)))
	}
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	start := time.Now()
	testwait.Eventually(t, 30*time.Second, "every node reaches its target", func() error {
		for i, n := range nodes {
			if k := n.c.NumPeers(); k < cfg.TargetPeers {
				return fmt.Errorf("node %d has %d peers, target %d", i, k, cfg.TargetPeers)
			}
		}
		return nil
	})
	t.Logf("%d nodes reached %d peers in %v of fake time", size, cfg.TargetPeers, time.Since(start))
	bootListed := 0
	for i, n := range nodes {
		peers := n.c.Peers()
		if len(peers) > cfg.MaxPeers {
			t.Errorf("node %d has %d peers, more than the maximum %d", i, len(peers), cfg.MaxPeers)
		}
		for _, p := range peers {
			if (p.Addr == boot.addr) != p.Bootstrap && i != 0 {
				t.Errorf("node %d: peer %s flagged bootstrap %v", i, p.Addr, p.Bootstrap)
			}
			if p.Addr == boot.addr {
				bootListed++
			}
			if p.Addr == n.addr || p.Key == n.ep.Public() {
				t.Errorf("node %d lists itself as a peer", i)
			}
			if p.LAN != p.Addr {
				t.Errorf("node %d: peer %s announced LAN address %s, want its socket's", i, p.Addr, p.LAN)
			}
		}
	}
	if bootListed == 0 {
		t.Errorf("no node lists the bootstrap node, which answers as a full peer")
	}
	// Stop one node that is not the bootstrap node; every other node that
	// knew it drops it within the churn timeout.
	victim := nodes[size/2]
	victim.stop()
	testwait.Eventually(t, cfg.DropAfter+2*time.Second, "the stopped node is dropped", func() error {
		for i, n := range nodes {
			if n == victim {
				continue
			}
			for _, p := range n.c.Peers() {
				if p.Addr == victim.addr {
					return fmt.Errorf("node %d still lists the stopped node (last seen %v ago)", i, time.Since(p.LastSeen))
				}
			}
		}
		return nil
	})
	// The survivors walk again and refill their tables.
	testwait.Eventually(t, 20*time.Second, "survivors refill", func() error {
		for i, n := range nodes {
			if k := n.c.NumPeers(); n != victim && k < cfg.TargetPeers {
				return fmt.Errorf("node %d has %d peers, target %d", i, k, cfg.TargetPeers)
			}
		}
		return nil
	})
	// The events seen by a node replay into its table. Wait until every
	// goroutine is idle: the driver has delivered its events and
	// published the table they lead to.
	synctest.Wait()
	n := nodes[1]
	n.mu.Lock()
	replay := map[netip.AddrPort]bool{}
	for _, e := range n.events {
		switch e.Kind {
		case PeerAdded:
			replay[e.Peer.Addr] = true
		case PeerRemoved:
			delete(replay, e.Peer.Addr)
		}
	}
	n.mu.Unlock()
	table := map[netip.AddrPort]bool{}
	for _, p := range n.c.Peers() {
		table[p.Addr] = true
	}
	if len(replay) != len(table) {
		t.Errorf("events replay to %d peers, table has %d", len(replay), len(table))
	}
	for a := range table {
		if !replay[a] {
			t.Errorf("peer %s is in the table but no event added it", a)
		}
	}
	var drops uint64
	for _, n := range nodes {
		s := n.ep.Stats()
		drops += s.DroppedBadSignature + s.DroppedMalformed
	}
	if drops != 0 {
		t.Errorf("%d datagrams between honest nodes were dropped as bad", drops)
	}
}
