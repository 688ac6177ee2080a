//go:build linux

package drill

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestLiars: 3 of 10 hosts seed the same content but serve corrupt chunks
// (the drill program shoal-drill with --corrupt-uploads). Honest downloaders reject those chunks, ban
// the liars and finish with the right bytes.
func TestLiars(t *testing.T) {
	t.Parallel() // waits on shaped links more than on the CPU
	const liars, honest = 3, 6
	size := int64(pick(16, 128)) * mib
	ctx, cancel := context.WithTimeout(context.Background(), pick(2*time.Minute, 10*time.Minute))
	defer cancel()
	// The publisher's slow uplink makes the liars' fast ones attractive.
	sg := setStage(ctx, t, 1+liars+honest, "liars.bin", size, 2, 50e6)
	bin, hs, dir, sum, pub, p := sg.bin, sg.hs, sg.dir, sg.sum, sg.pub, sg.p
	for i := 1; i <= liars; i++ {
		// Each liar publishes its own copy of the same bytes: same content
		// ID, so downloaders find it as a provider in the DHT.
		copyPath := filepath.Join(dir, fmt.Sprintf("liar%d", i), "liars.bin")
		if got := writeRandom(t, copyPath, size, 2); got != sum {
			t.Fatal("the liars' copy differs from the source")
		}
		n := StartNode(t, bin, hs[i], dir, NodeOptions{Bootstrap: []string{pub.Addr()}, Corrupt: true})
		lp, err := n.Publish(ctx, copyPath)
		if err != nil {
			t.Fatal(err)
		}
		if lp.Item.ID != p.Item.ID {
			t.Fatalf("liar %d published %s, the publisher %s", i, lp.Item.ID, p.Item.ID)
		}
	}
	nodes := make([]*Node, honest)
	for i := range nodes {
		nodes[i] = StartNode(t, bin, hs[1+liars+i], dir, NodeOptions{Bootstrap: []string{pub.Addr()}})
	}
	// The crowd asks once each honest host's DHT table holds the publisher
	// and the liars: the liars announced to the publisher (the only node
	// they knew before one another), so their records are a lookup away.
	for _, n := range nodes {
		waitMetric(ctx, t, n, "shoal_dht_table_nodes", 1+liars)
	}

	var wg sync.WaitGroup
	errs := make([]error, honest)
	paths := make([]string, honest)
	took := make([]time.Duration, honest)
	start := time.Now()
	for i, n := range nodes {
		wg.Go(func() {
			it, err := n.Get(ctx, p.Link, filepath.Join(n.Home, "out"), 60*time.Second)
			errs[i], paths[i], took[i] = err, it.Path, time.Since(start).Round(time.Millisecond)
		})
	}
	wg.Wait()
	var rejected, banned []int64
	var rejSum, banSum int64
	for i, n := range nodes {
		if errs[i] != nil {
			t.Fatalf("honest host %d: %v", i, errs[i])
		}
		sameBytes(t, fmt.Sprintf("honest host %d", i), paths[i], sum)
		r, b := metric(t, n, "shoal_chunks_rejected_total"), metric(t, n, "shoal_peers_banned_total")
		rejected, banned = append(rejected, r), append(banned, b)
		rejSum, banSum = rejSum+r, banSum+b
		if b > liars {
			t.Errorf("honest host %d banned %d peers, but only %d lie", i, b, liars)
		}
	}
	up := metric(t, pub, "shoal_bytes_up_total")
	figures(t, "%d liars, %d honest x %d MiB: times %v; chunks rejected per host %v (sum %d); peers banned per host %v (sum %d); publisher uploaded %.1f MiB",
		liars, honest, size/mib, took, rejected, rejSum, banned, banSum, float64(up)/mib)
	if rejSum == 0 || banSum == 0 {
		t.Errorf("no liar was caught: %d chunks rejected, %d peers banned", rejSum, banSum)
	}
}
