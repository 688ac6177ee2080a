package overlaytest

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/dht"
	"github.com/shoal-p2p/shoal/internal/adversary"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testwait"
)

// network starts count honest peers on 127.0.0.1, all bootstrapped from
// the first.
func network(t *testing.T, ctx context.Context, count int) []*peer {
	t.Helper()
	peers := make([]*peer, count)
	for i := range peers {
		peers[i] = startPeer(t)
	}
	join(t, ctx, peers[1:], peers[0].addr)
	return peers
}

// join bootstraps every peer from boot, in parallel.
func join(t *testing.T, ctx context.Context, peers []*peer, boot netip.AddrPort) {
	t.Helper()
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Go(func() {
			if err := p.dht.Bootstrap(ctx, []netip.AddrPort{boot}); err != nil {
				t.Errorf("bootstrap: %v", err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// TestAttackSybilProviders (issue 12 item 6): six throwaway identities on
// another address (127.0.0.2) announce the content on every storing node
// before the publisher does; a node that joins afterwards still finds the
// publisher with one lookup. Replies used to carry the first six records
// stored, all fake.
func TestAttackSybilProviders(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	honest := network(t, ctx, 10)
	var sybils []*peer
	for range 6 {
		sybils = append(sybils, startPeerAt(t, "127.0.0.2:0"))
	}
	join(t, ctx, sybils, honest[0].addr)
	content := dht.Key{0x5b, 0x11}
	for i, s := range sybils {
		if err := s.dht.Provide(ctx, content); err != nil {
			t.Fatalf("sybil %d provide: %v", i, err)
		}
	}
	publisher := honest[3]
	if err := publisher.dht.Provide(ctx, content); err != nil {
		t.Fatalf("publisher provide: %v", err)
	}
	finder := startPeer(t)
	join(t, ctx, []*peer{finder}, honest[0].addr)
	found := false
	var got []string
	for p := range finder.dht.FindProviders(ctx, content) {
		got = append(got, p.ID.Short())
		if p.ID == publisher.dht.Self() {
			found = true
		}
	}
	if !found {
		t.Fatalf("lookup found %v, not the publisher %s", got, publisher.dht.Self().Short())
	}
}

// TestAttackReplayedPing (issue 12 item 7): an attacker that captured a
// signed DHT ping of a node replays it to the victim from another address,
// twice. The victim's entry for that node keeps its real address (the
// attacker cannot answer the ping that would prove the new one) and the
// second copy is dropped as a replay.
func TestAttackReplayedPing(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	peers := network(t, ctx, 3)
	victim, x := peers[0], peers[1]
	capture, err := adversary.NewCapture("127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer capture.Close()
	// x pings the attacker (a bootstrap that will fail): the attacker keeps
	// the signed datagram.
	go x.dht.Bootstrap(ctx, []netip.AddrPort{capture.Addr()})
	ping, err := capture.Next(ctx)
	if err != nil {
		t.Fatalf("capturing x's ping: %v", err)
	}
	in := victim.dht.Stats().MessagesIn
	for range 2 {
		if _, err := adversary.Replay(ctx, ping, victim.addr, "127.0.0.3:0"); err != nil {
			t.Fatal(err)
		}
	}
	// MessagesIn also counts the network's own traffic, so the replay
	// counter is waited for too: it moves only when the second copy is read.
	testwait.Eventually(t, 30*time.Second, "the victim takes both copies", func() error {
		if s := victim.dht.Stats(); s.MessagesIn < in+2 || s.Replays < 1 {
			return fmt.Errorf("%d messages in, want at least %d; %d replays dropped", s.MessagesIn, in+2, s.Replays)
		}
		return nil
	})
	if r := victim.dht.Stats().Replays; r != 1 {
		t.Errorf("Replays = %d, want the second copy dropped", r)
	}
	cs, err := victim.dht.Closest(ctx, dht.Key(x.dht.Self()), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ID != x.dht.Self() || cs[0].Addr != x.addr {
		t.Fatalf("victim's entry for x is %+v, want x at %s", cs, x.addr)
	}
}

// TestAttackSilentIdentities (issue 12 item 7): 100 throwaway identities
// send signed requests to a publisher and never answer. None enters its
// routing table, so its announcement queries only real nodes.
func TestAttackSilentIdentities(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	peers := network(t, ctx, 8)
	publisher := peers[2]
	before := publisher.dht.TableSize()
	in := publisher.dht.Stats().MessagesIn
	if err := adversary.DHTFlood(publisher.addr, "127.0.0.4:0", 100); err != nil {
		t.Fatal(err)
	}
	// A fresh honest node pings the publisher after the flood: once it has
	// its answer, the publisher has read every flood datagram that was not
	// dropped on the way (UDP on loopback keeps order).
	late := startPeer(t)
	join(t, ctx, []*peer{late}, publisher.addr)
	flooded := publisher.dht.Stats().MessagesIn - in
	t.Logf("the publisher took %d of the 100 flood requests", flooded)
	if flooded < 10 {
		t.Fatalf("only %d flood requests reached the publisher's DHT, want at least 10 for the test to mean something", flooded)
	}
	real := make(map[dht.Key]bool)
	for _, p := range append(peers, late) {
		real[dht.Key(p.dht.Self())] = true
	}
	cs, err := publisher.dht.Closest(ctx, dht.Key{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if !real[dht.Key(c.ID)] {
			t.Fatalf("a silent identity %s at %s is in the publisher's table (%d entries, %d before the flood)", c.ID.Short(), c.Addr, len(cs), before)
		}
	}
	if err := publisher.dht.Provide(ctx, dht.Key{0xf1}); err != nil {
		t.Fatalf("provide after the flood: %v", err)
	}
}
