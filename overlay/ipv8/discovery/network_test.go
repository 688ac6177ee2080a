package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/netem"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// node is one discovery node on a loopback socket.
type node struct {
	addr   netip.AddrPort
	ep     *ipv8.Endpoint
	c      *Community
	cancel context.CancelFunc
	wg     sync.WaitGroup
	conn   net.PacketConn

	mu     sync.Mutex
	events []Event
}

func (n *node) stop() {
	n.cancel()
	n.wg.Wait()
	n.conn.Close()
}

// fastConfig shrinks every duration so that a test world converges in
// seconds.
func fastConfig() Config {
	return Config{
		TargetPeers:       20,
		MaxPeers:          30,
		WalkInterval:      timeScale * 40 * time.Millisecond,
		IntroTimeout:      timeScale * 400 * time.Millisecond,
		PingAfter:         timeScale * 800 * time.Millisecond,
		DropAfter:         timeScale * 2 * time.Second,
		BootstrapInterval: timeScale * 400 * time.Millisecond,
	}
}

// startNode opens a loopback socket, optionally impaired, and runs an
// endpoint and a discovery community on it.
func startNode(t *testing.T, cfg Config, em *netem.Config, seed uint64) *node {
	t.Helper()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var conn net.PacketConn = udp
	if em != nil {
		c := *em
		c.Seed = seed
		if conn, err = netem.Wrap(udp, c); err != nil {
			t.Fatal(err)
		}
	}
	kp, err := identity.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := ipv8.NewEndpoint(conn, ipv8.Config{Key: kp})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{addr: udp.LocalAddr().(*net.UDPAddr).AddrPort(), ep: ep, conn: conn}
	cfg.LANAddress = n.addr
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
		name string
		em   *netem.Config
	}{
		{"clean loopback", nil},
		{"2% loss 20ms delay", &netem.Config{Delay: 20 * time.Millisecond, Loss: 0.02}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runWorld(t, 50, tc.em) })
	}
}

func runWorld(t *testing.T, size int, em *netem.Config) {
	leakcheck.Check(t)
	cfg := fastConfig()
	boot := startNode(t, cfg, em, 1)
	nodes := []*node{boot}
	cfg.Bootstrap = []netip.AddrPort{boot.addr}
	for i := 1; i < size; i++ {
		nodes = append(nodes, startNode(t, cfg, em, uint64(i+1)))
	}
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()

	start := time.Now()
	waitFor(t, timeScale*30*time.Second, "every node reaches its target", func() error {
		for i, n := range nodes {
			if k := n.c.NumPeers(); k < cfg.TargetPeers {
				return fmt.Errorf("node %d has %d peers, target %d", i, k, cfg.TargetPeers)
			}
		}
		return nil
	})
	t.Logf("%d nodes reached %d peers in %v", size, cfg.TargetPeers, time.Since(start).Round(time.Millisecond))
	for i, n := range nodes {
		peers := n.c.Peers()
		if len(peers) > cfg.MaxPeers {
			t.Errorf("node %d has %d peers, more than the maximum %d", i, len(peers), cfg.MaxPeers)
		}
		for _, p := range peers {
			if p.Addr == boot.addr && i != 0 {
				t.Errorf("node %d counts the bootstrap node as a peer", i)
			}
			if p.Addr == n.addr || p.Key == n.ep.Public() {
				t.Errorf("node %d lists itself as a peer", i)
			}
		}
	}

	// Stop one node that is not the bootstrap node; every other node that
	// knew it drops it within the churn timeout.
	victim := nodes[size/2]
	victim.stop()
	stopped := time.Now()
	waitFor(t, cfg.DropAfter+timeScale*2*time.Second, "the stopped node is dropped", func() error {
		for i, n := range nodes {
			if n == victim {
				continue
			}
			for _, p := range n.c.Peers() {
				if p.Addr == victim.addr {
					return fmt.Errorf("node %d still lists the stopped node (last seen %v ago)", i, time.Since(p.LastSeen).Round(time.Millisecond))
				}
			}
		}
		return nil
	})
	t.Logf("stopped node dropped by all after %v (DropAfter %v)", time.Since(stopped).Round(time.Millisecond), cfg.DropAfter)

	// The survivors walk again and refill their tables.
	waitFor(t, timeScale*20*time.Second, "survivors refill", func() error {
		for i, n := range nodes {
			if k := n.c.NumPeers(); n != victim && k < cfg.TargetPeers {
				return fmt.Errorf("node %d has %d peers, target %d", i, k, cfg.TargetPeers)
			}
		}
		return nil
	})

	// The events seen by a node replay into its table.
	n := nodes[1]
	time.Sleep(2 * cfg.WalkInterval) // let Run deliver the last events
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

func waitFor(t *testing.T, limit time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
