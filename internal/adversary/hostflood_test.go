package adversary

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testwait"
)

// TestDHTHostFlood: one host floods a DHT node from 40 sockets and
// identities, each within the per-sender rate (50 requests/s), 2,000
// requests a second in all. The host's budget (8 times a sender's) holds
// the flood, and an honest node on another host joins through the victim
// meanwhile.
func TestDHTHostFlood(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v := NewDHTPeer(t, "127.0.0.1:0", NotFound)
	f, err := DHTRequestFlood(ctx, v.Addr(), []string{"127.0.2.1:0"}, 40, 2000)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	testwait.Eventually(t, 30*time.Second, "the victim refuses 200 requests by the flooding host's budget", func() error {
		if n := v.DHT.Counters().HostRateLimited; n < 200 {
			return fmt.Errorf("%d refused by the host budget, %d sent", n, f.Sent())
		}
		return nil
	})
	x := NewDHTPeer(t, "127.0.2.2:0", NotFound)
	if err := x.DHT.Bootstrap(ctx, []netip.AddrPort{v.Addr()}); err != nil {
		t.Fatalf("honest node on another host could not join through the flooded victim: %v", err)
	}
	if n := x.DHT.TableSize(); n < 1 {
		t.Errorf("honest node's table holds %d nodes after joining", n)
	}
	if vol := f.Stop(); vol.Failed != 0 {
		t.Errorf("flood volume %+v: sends failed", vol)
	}
}
