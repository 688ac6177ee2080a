//go:build linux

package drill

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/seed"
)

// TestNATRelayUpgrade: two hosts behind cone NATs whose direct path is
// broken at first (the publisher's router drops everything from the other
// router), so the download goes through the relay; once the path heals, a
// later puncture succeeds and the relayed connection is replaced by a
// direct one, which the next download uses.
func TestNATRelayUpgrade(t *testing.T) {
	t.Parallel() // waits on links and timers more than on the CPU
	if why := natAvailable(); why != "" {
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := Binary(t)
	nt := NewPublic(t, 1)
	ra, rb := nt.AddRouter(Cone, false), nt.AddRouter(Cone, false)
	if err := ra.Block(rb.Public); err != nil {
		t.Fatal(err)
	}
	ha, hb := ra.AddHost(), rb.AddHost()
	dir := t.TempDir()
	intro := StartNode(t, bin, nt.Hosts()[0], dir, NodeOptions{Config: `{"relay": true}`})
	opts := NodeOptions{Bootstrap: []string{intro.Addr()}, Config: `{"use_relays": true}`}
	a, b := StartNode(t, bin, ha, dir, opts), StartNode(t, bin, hb, dir, opts)
	waitMetric(ctx, t, intro, "shoal_relay_clients", 2)
	var links []string
	for i := range 2 {
		src := filepath.Join(dir, fmt.Sprintf("src%d", i), "f.bin")
		writeRandom(t, src, 2*mib, uint64(60+i))
		p, err := a.Publish(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := chunker.ParseLink(p.Link)
		l.Peers = nil
		links = append(links, l.String())
	}
	pathToA := func() string {
		peers, err := b.Peers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range peers {
			if p.PeerID == a.Status.PeerID {
				return p.Path
			}
		}
		return ""
	}
	if _, err := b.Get(ctx, links[0], filepath.Join(b.Home, "out0"), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if p := pathToA(); p != seed.PathRelayed {
		t.Fatalf("with the direct path broken, the download's path is %q, want relayed", p)
	}
	// The path stays broken for longer than a dial lasts (overlay's
	// DialTimeout, 10 s, from before the relayed dial), so that the direct dials the download started
	// beside the relayed one are over: what follows is the upgrade loop's
	// doing, not theirs. The relayed connection lives on meanwhile.
	time.Sleep(10 * time.Second) // a window over which the path must stay relayed, and the dials' timeout
	if p := pathToA(); p != seed.PathRelayed {
		t.Fatalf("while the direct path is broken, the path is %q, want relayed", p)
	}
	if err := ra.Unblock(); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	deadline, _ := ctx.Deadline()
	testwait.Eventually(t, time.Until(deadline), "the relayed connection is upgraded to direct", func() error {
		if p := pathToA(); p != seed.PathDirect {
			return fmt.Errorf("the path is %q", p)
		}
		return nil
	})
	upgradedIn := time.Since(healed)
	if _, err := b.Get(ctx, links[1], filepath.Join(b.Home, "out1"), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if p := pathToA(); p != seed.PathDirect {
		t.Fatalf("after the upgrade, the next download's path is %q, want direct", p)
	}
	ups := metric(t, b, "shoal_relay_upgrades_total")
	figures(t, "relayed connection upgraded to direct %v after the path healed (upgrades tried every 10 s); upgrades counted: %d", upgradedIn.Round(100*time.Millisecond), ups)
	if ups < 1 {
		t.Errorf("shoal_relay_upgrades_total is %d, want at least 1", ups)
	}
}
