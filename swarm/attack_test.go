package swarm_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/adversary"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/swarm"
)

// Attacks of issue 12 on the download side, each through real QUIC sockets
// with an honest peer that must still succeed. docs/security.md lists them.

// TestAttackMetaBusyLoop (issue 12 item 1): a link names a peer that does
// not hold the content. The download must back off between manifest
// requests instead of retrying in a loop, and still finish once an honest
// peer appears.
func TestAttackMetaBusyLoop(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seeder := newPeer(t, swarm.ServerConfig{})
	c := publish(t, seeder, 2<<20+11, 21)
	wrong := adversary.NewSwarmPeer(t, adversary.NotFound)
	leecher := newPeer(t, swarm.ServerConfig{})
	d, done := startDownload(ctx, t, leecher, c, swarm.Config{})
	d.AddPeer(wrong.ID(), wrong.Addr())
	// An observation window, not a wait for a condition: the claim is about
	// the request rate while nothing else happens. With a 0.5 s first pause
	// doubling, 1.6 s allow requests at about 0, 0.5 and 1.5 s.
	time.Sleep(1600 * time.Millisecond)
	n := wrong.Requests(swarm.KindManifest)
	t.Logf("%d manifest requests to a peer without the content in 1.6 s", n)
	if n == 0 || n > 6 {
		t.Fatalf("%d manifest requests in 1.6 s, want 1 to 6 (a backoff, not a loop)", n)
	}
	if p := d.Progress(); p.MetaFetches != int(n) {
		t.Errorf("Progress.MetaFetches = %d, the peer saw %d", p.MetaFetches, n)
	}
	d.AddPeer(seeder.id(), seeder.addr())
	waitRun(t, "leecher", done, 30*time.Second)
	checkOutput(t, leecher, c)
}

// TestAttackMetaStallAndLies (issue 12 item 5): the first peers a download
// knows announce a manifest and go silent, serve a manifest that is not the
// content's, or serve a leaf layer that does not match the root. The liars
// are banned although the stallers were asked first (fetches are hedged),
// and once an honest peer is known the metadata comes from it at once,
// although the stallers' fetches are still open (20 s deadline).
func TestAttackMetaStallAndLies(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seeder := newPeer(t, swarm.ServerConfig{})
	c := publish(t, seeder, 2<<20+13, 22)
	manifest, err := c.man.Encode()
	if err != nil {
		t.Fatal(err)
	}
	stallers := []*adversary.SwarmPeer{
		adversary.NewSwarmPeer(t, adversary.StallMeta),
		adversary.NewSwarmPeer(t, adversary.StallMeta),
		adversary.NewSwarmPeer(t, adversary.StallMeta),
	}
	badMan := adversary.NewSwarmPeer(t, adversary.BadManifest)
	badLeaves := adversary.NewSwarmPeer(t, adversary.BadLeaves)
	badLeaves.Manifest = manifest
	leecher := newPeer(t, swarm.ServerConfig{})
	// The defaults would give a staller 20 s; the test keeps them, and
	// finishes long before: the honest answer wins.
	d, done := startDownload(ctx, t, leecher, c, swarm.Config{})
	for _, s := range stallers {
		d.AddPeer(s.ID(), s.Addr())
	}
	d.AddPeer(badMan.ID(), badMan.Addr())
	d.AddPeer(badLeaves.ID(), badLeaves.Addr())
	testwait.Eventually(t, 10*time.Second, "both liars banned", func() error {
		if n := d.Progress().Banned; n != 2 {
			return fmt.Errorf("%d banned", n)
		}
		return nil
	})
	d.AddPeer(seeder.id(), seeder.addr())
	start := time.Now()
	waitRun(t, "leecher", done, 25*time.Second)
	checkOutput(t, leecher, c)
	p := d.Progress()
	t.Logf("done in %v with three stallers and two liars; progress %+v", time.Since(start), p)
	if p.Banned != 2 {
		t.Errorf("Progress.Banned = %d, want 2 (the bad manifest and the bad leaf layer)", p.Banned)
	}
	if badMan.Requests(swarm.KindManifest) != 1 {
		t.Errorf("the peer with a bad manifest was asked %d times, want once (banned)", badMan.Requests(swarm.KindManifest))
	}
	if got := badLeaves.Requests(swarm.KindLeaves); got != 1 {
		t.Errorf("the peer with a bad leaf layer was asked for it %d times, want once (banned)", got)
	}
}

// TestAttackMetaStallersAhead (issue 12, row (d) of the flood figures):
// more stallers than MaxMetaFetches are asked for the metadata before the
// honest seeder is known, some answering "ok, N bytes" and then nothing,
// some nothing at all. With hedging by age alone (MetaHedge, here 10 min)
// the seeder would wait behind them; a silent fetch stops counting and
// widens the search, and at the cap the longest-silent one is cancelled, so
// the seeder is asked and the download completes.
func TestAttackMetaStallersAhead(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seeder := newPeer(t, swarm.ServerConfig{})
	c := publish(t, seeder, 1<<20+7, 23)
	var stallers []*adversary.SwarmPeer
	for i := range 8 {
		mode := adversary.StallMeta
		if i%2 == 1 {
			mode = adversary.SilentMeta
		}
		stallers = append(stallers, adversary.NewSwarmPeer(t, mode))
	}
	leecher := newPeer(t, swarm.ServerConfig{})
	d, done := startDownload(ctx, t, leecher, c, swarm.Config{MetaTimeout: 10 * time.Minute, MetaHedge: 10 * time.Minute, MaxMetaFetches: 4})
	for _, s := range stallers {
		d.AddPeer(s.ID(), s.Addr())
	}
	asked := func() (n int64) {
		for _, s := range stallers {
			n += s.Requests(swarm.KindManifest)
		}
		return n
	}
	testwait.Eventually(t, 10*time.Second, "the first stallers asked", func() error {
		if n := asked(); n < 3 {
			return fmt.Errorf("%d manifest requests reached the stallers", n)
		}
		return nil
	})
	d.AddPeer(seeder.id(), seeder.addr())
	waitRun(t, "leecher", done, 25*time.Second)
	checkOutput(t, leecher, c)
	p := d.Progress()
	t.Logf("progress %+v; the stallers got %d manifest requests", p, asked())
	// Stallers held every slot when the seeder was added (at least 3 of
	// the 4 of MaxMetaFetches, below ManifestParallel), and MetaHedge is
	// 10 minutes: the seeder can only have been asked once a fetch fell
	// silent. How many fell silent, and whether
	// one was cancelled at MaxMetaFetches, depends on where the seeder
	// comes in the (random) order the known peers are asked in, so those
	// counts are only logged.
	if p.MetaSilent < 1 {
		t.Errorf("Progress.MetaSilent = %d, want at least 1 (stallers held every slot)", p.MetaSilent)
	}
}

// TestAttackAddPeerFlood (issue 12 item 13, d.known): a flood of provider
// records (distinct identities and repeats) cannot grow a download past
// MaxPeers; the overflow is counted.
func TestAttackAddPeerFlood(t *testing.T) {
	p := newPeer(t, swarm.ServerConfig{})
	d, err := swarm.NewDownload(swarm.Config{MaxPeers: 100}, p.dialer(), p.store, [32]byte{1}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	addr := netip.MustParseAddrPort("127.0.0.1:9")
	var same identity.PeerID
	rand.Read(same[:])
	for range 10000 {
		d.AddPeer(same, addr) // repeats: one peer
	}
	for range 5000 {
		var id identity.PeerID
		rand.Read(id[:])
		d.AddPeer(id, addr)
	}
	if got, want := d.Progress().PeersDropped, 5000-99; got != want {
		t.Fatalf("PeersDropped = %d, want %d (cap 100, one repeated peer)", got, want)
	}
}
