package swarm_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/adversary"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/swarm"
)

// noSilence turns the metadata search's clocks off (a fetch never counts
// as silent or old), so a test sees only how many peers are asked at once.
var noSilence = swarm.Config{MetaTimeout: 10 * time.Minute, MetaHedge: 10 * time.Minute, MetaIdle: 10 * time.Minute}

// nodeRTT is swarm.Config.PeerRTT for a download on n, as the seed node
// sets it.
func nodeRTT(n *overlay.Node) func(identity.PeerID) time.Duration {
	return func(id identity.PeerID) time.Duration {
		if c := n.Conn(id); c != nil {
			return c.QUIC().ConnectionStats().SmoothedRTT
		}
		return 0
	}
}

// TestAttackMetaManifestFanOut (issue 12, row (d) of the flood figures):
// seven stallers known before the seeder are all asked for the manifest at
// once (ManifestParallel, 8), so the seeder, known last, is asked at once
// too, without waiting for any staller to fall silent. The clocks are off:
// with 3 peers asked at once (the previous rule) the seeder is never asked.
func TestAttackMetaManifestFanOut(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seeder := newPeer(t, swarm.ServerConfig{})
	c := publish(t, seeder, 1<<20+9, 24)
	var stallers []*adversary.SwarmPeer
	for i := range 7 {
		mode := adversary.StallMeta
		if i%2 == 1 {
			mode = adversary.SilentMeta
		}
		stallers = append(stallers, adversary.NewSwarmPeer(t, mode))
	}
	leecher := newPeer(t, swarm.ServerConfig{})
	d, done := startDownload(ctx, t, leecher, c, noSilence)
	for _, s := range stallers {
		d.AddPeer(s.ID(), s.Addr())
	}
	testwait.Eventually(t, 10*time.Second, "every staller asked for the manifest", func() error {
		for i, s := range stallers {
			if s.Requests(swarm.KindManifest) == 0 {
				return fmt.Errorf("staller %d not asked yet", i)
			}
		}
		return nil
	})
	d.AddPeer(seeder.id(), seeder.addr())
	waitRun(t, "leecher", done, 25*time.Second)
	checkOutput(t, leecher, c)
	p := d.Progress()
	t.Logf("progress %+v", p)
	if p.MetaSilent != 0 || p.MetaFetches != 8 {
		t.Errorf("Progress.MetaSilent, MetaFetches = %d, %d; want 0, 8 (all asked at once, nothing timed)", p.MetaSilent, p.MetaFetches)
	}
}

// countingDialer counts the requests of each kind a download sends.
type countingDialer struct {
	d swarm.Dialer
	n [5]atomic.Int64
}

func (c *countingDialer) OpenStream(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (swarm.Stream, error) {
	st, err := c.d.OpenStream(ctx, peer, addr)
	if err != nil {
		return nil, err
	}
	return &countingStream{Stream: st, c: c}, nil
}

type countingStream struct {
	swarm.Stream
	c       *countingDialer
	counted bool
}

func (s *countingStream) Write(b []byte) (int, error) {
	if !s.counted && len(b) >= 2 { // version, kind: the request's first bytes
		s.counted = true
		if k := int(b[1]); k < len(s.c.n) {
			s.c.n[k].Add(1)
		}
	}
	return s.Stream.Write(b)
}

// TestMetaLeavesFromFirstManifests: with six seeders asked for the manifest
// at once, the leaf layer (32 bytes a chunk: megabytes for large content)
// is asked of at most MetaParallel of them, not of all six. The clocks are
// off, so no fetch is hedged.
func TestMetaLeavesFromFirstManifests(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := newPeer(t, swarm.ServerConfig{})
	c := publish(t, first, 1<<20+5, 25)
	seeders := []*tpeer{first}
	for range 5 {
		p := newPeer(t, swarm.ServerConfig{})
		seedPart(t, p, first, c, func(int) bool { return true })
		seeders = append(seeders, p)
	}
	leecher := newPeer(t, swarm.ServerConfig{})
	count := &countingDialer{d: leecher.dialer()}
	cfg := noSilence
	cfg.MetaParallel, cfg.Server = 2, leecher.srv
	d, err := swarm.NewDownload(cfg, count, leecher.store, c.id, filepath.Join(leecher.dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, s := range seeders {
		d.AddPeer(s.id(), s.addr())
	}
	if err := d.Run(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
	checkOutput(t, leecher, c)
	man, leaves := count.n[swarm.KindManifest].Load(), count.n[swarm.KindLeaves].Load()
	t.Logf("%d manifest and %d leaf layer requests; progress %+v", man, leaves, d.Progress())
	if p := d.Progress(); p.MetaFetches != 6 {
		t.Errorf("Progress.MetaFetches = %d, want 6 (every seeder asked at once)", p.MetaFetches)
	}
	if leaves < 1 || leaves > 2 {
		t.Errorf("%d leaf layer requests, want 1 or 2 (MetaParallel)", leaves)
	}
}

// TestAttackMetaSlowHonestPeer: a seeder 200 ms away (a relay delaying each
// datagram 100 ms) is not taken for a staller by the 25 ms silence limit:
// the limit follows the link (the connection's round trip, or the time a
// stream took to open). With the connection already open (no dial to
// measure), the previous fixed 100 ms limit judged it silent. Beside
// stallers, with a cap of 4 fetches in flight, the stallers are the ones
// cancelled and the seeder serves the metadata.
func TestAttackMetaSlowHonestPeer(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name     string
		connect  bool
		stallers int
	}{
		{"fresh dial", false, 0},
		{"open connection", true, 0},
		{"open connection, 6 stallers, cap 4", true, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits on round trips, not the CPU
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			seeder := newPeer(t, swarm.ServerConfig{})
			c := publish(t, seeder, 64<<10+3, 26)
			link := adversary.NewSlowLink(t, seeder.addr(), 100*time.Millisecond)
			leecher := newPeer(t, swarm.ServerConfig{})
			if tc.connect {
				if _, err := leecher.node.Dial(ctx, seeder.id(), link.Addr()); err != nil {
					t.Fatalf("dialing the seeder through the relay: %v", err)
				}
			}
			var stallers []*adversary.SwarmPeer
			for range tc.stallers {
				stallers = append(stallers, adversary.NewSwarmPeer(t, adversary.StallMeta))
			}
			cfg := swarm.Config{PeerRTT: nodeRTT(leecher.node)}
			if tc.stallers > 0 {
				cfg.MaxMetaFetches, cfg.ManifestParallel = 4, 4
			}
			d, done := startDownload(ctx, t, leecher, c, cfg)
			for _, s := range stallers {
				d.AddPeer(s.ID(), s.Addr())
			}
			d.AddPeer(seeder.id(), link.Addr())
			waitRun(t, "leecher", done, 55*time.Second)
			checkOutput(t, leecher, c)
			p := d.Progress()
			t.Logf("progress %+v", p)
			if tc.stallers == 0 && p.MetaSilent != 0 {
				t.Errorf("Progress.MetaSilent = %d, want 0: the seeder 200 ms away was judged silent", p.MetaSilent)
			}
		})
	}
}
