//go:build linux

package drill

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/testwait"
)

// TestDiscoveryDHT: hosts that know only one bootstrap host find each other
// over their real addresses, and hosts holding only a bare link (no peer
// hint) find the provider through the DHT. Every node's socket carries 10 ms
// of delay and 1% loss (shoal-drill --netem).
func TestDiscoveryDHT(t *testing.T) {
	t.Parallel() // waits on shaped links more than on the CPU
	hosts := pick(10, 20)
	getters := pick(3, 6)
	minPeers := pick(3, 5) // peers known besides the bootstrap host
	bin := Binary(t)
	nt := New(t, hosts)
	dir := t.TempDir()
	hs := nt.Hosts()
	src := filepath.Join(dir, "src", "found.bin")
	sum := writeRandom(t, src, 2*mib, 5)

	netemSpec := func(i int) string { return fmt.Sprintf("delay=10ms,loss=0.01,seed=%d", i+1) }
	boot := StartNode(t, bin, hs[0], dir, NodeOptions{Netem: netemSpec(0)})
	nodes := []*Node{boot}
	for i := 1; i < hosts; i++ {
		nodes = append(nodes, StartNode(t, bin, hs[i], dir, NodeOptions{Bootstrap: []string{boot.Addr()}, Netem: netemSpec(i)}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), pick(2*time.Minute, 5*time.Minute))
	defer cancel()

	// Discovery: everyone learns about peers other than the bootstrap.
	t0 := time.Now()
	known := make([]int, hosts)
	testwait.Eventually(t, pick(45*time.Second, 90*time.Second), fmt.Sprintf("every host knows at least %d peers besides the bootstrap host", minPeers), func() error {
		for i, n := range nodes {
			ps, err := n.Peers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			known[i] = 0
			for _, p := range ps {
				if p.PeerID != boot.Status.PeerID {
					known[i]++
				}
			}
		}
		for _, k := range known {
			if k < minPeers {
				return fmt.Errorf("after %v, peers known besides the bootstrap host: %v", time.Since(t0).Round(time.Second), known)
			}
		}
		return nil
	})
	discovered := time.Since(t0).Round(100 * time.Millisecond)

	// DHT: the last host publishes; others get the bare link.
	provider := nodes[hosts-1]
	p, err := provider.Publish(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	l, err := chunker.ParseLink(p.Link)
	if err != nil {
		t.Fatal(err)
	}
	l.Peers = nil
	bare := l.String()
	var wg sync.WaitGroup
	errs := make([]error, getters)
	paths := make([]string, getters)
	took := make([]time.Duration, getters)
	for i := range getters {
		n := nodes[1+i*(hosts-2)/getters]
		wg.Go(func() {
			t1 := time.Now()
			it, err := n.Get(ctx, bare, filepath.Join(n.Home, "out"), 60*time.Second)
			errs[i], paths[i], took[i] = err, it.Path, time.Since(t1).Round(time.Millisecond)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("getter %d with a bare link: %v", i, err)
		}
		sameBytes(t, fmt.Sprintf("getter %d", i), paths[i], sum)
	}
	lookups := int64(0)
	for i := range getters {
		lookups += metric(t, nodes[1+i*(hosts-2)/getters], "shoal_dht_lookups_total")
	}
	figures(t, "%d hosts, delay 10ms loss 1%%: all knew >= %d peers besides the bootstrap after %v (known %v); %d bare-link gets found the provider in %v with %d DHT lookups",
		hosts, minPeers, discovered, known, getters, took, lookups)
}
