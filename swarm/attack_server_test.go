package swarm_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/adversary"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/swarm"
)

// Attacks of issue 12 on the upload side, through real QUIC sockets, while
// an honest peer downloads from the attacked server.

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestAttackHelloHoard (issue 12 item 2): one attacker opens 150 session
// streams announcing the largest hello the wire format admits (512 KiB)
// and sends none of it; another announces a hello of the exact size the
// content's bitmap needs and sends none of it either. The server must not
// allocate announced lengths (the first are refused from the header: the
// content has a few hundred chunks), caps each peer's sessions, and an
// honest download from it completes meanwhile with the heap bounded.
func TestAttackHelloHoard(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seeder := newPeer(t, swarm.ServerConfig{})
	c := publish(t, seeder, 4<<20+17, 31)
	big := adversary.NewSwarmPeer(t, adversary.NotFound)
	exact := adversary.NewSwarmPeer(t, adversary.NotFound)
	leecher := newPeer(t, swarm.ServerConfig{})
	before := heapInUse()

	actx, stopAttack := context.WithCancel(ctx)
	defer stopAttack()
	if n, err := big.HoldHellos(actx, seeder.id(), seeder.addr(), c.id, 150, adversary.MaxHelloBody); err != nil {
		t.Fatalf("attack opened %d streams: %v", n, err)
	}
	bodyLen := uint32(5 + (c.man.NumChunks()+7)/8)
	if n, err := exact.HoldHellos(actx, seeder.id(), seeder.addr(), c.id, 150, bodyLen); err != nil {
		t.Fatalf("attack opened %d streams: %v", n, err)
	}

	_, done := startDownload(ctx, t, leecher, c, swarm.Config{}, seeder)
	waitRun(t, "honest leecher", done, 25*time.Second)
	checkOutput(t, leecher, c)
	after := heapInUse()
	grew := int64(after) - int64(before)
	cn := seeder.srv.Counters()
	t.Logf("heap grew %d KiB under 300 held hellos; server counters %+v", grew>>10, cn)
	// 150 announced hellos of 512 KiB would be 75 MiB if allocated.
	if grew > 24<<20 {
		t.Errorf("heap grew by %d MiB while hellos were held, want under 24 MiB", grew>>20)
	}
	if cn.BadRequests < 150 {
		t.Errorf("server refused %d hellos as bad, want all 150 oversized ones", cn.BadRequests)
	}
	if want := int64(150 - swarm.DefaultMaxSessionsPerPeer); cn.SessionsRefused < want {
		t.Errorf("server refused %d sessions, want at least %d (per-peer cap %d)", cn.SessionsRefused, want, swarm.DefaultMaxSessionsPerPeer)
	}
}

// TestAttackUploadHoard (issue 12 item 4): two identities each ask for 32
// chunks of 4 MiB and never read them (before the fix they held every
// upload slot for the 60 s write timeout). Upload slots go only to chunks
// being written, each peer has at most SendPerPeer of them, and a write
// that stalls for StallTimeout loses its slot: an honest peer downloading
// from the same server meanwhile completes.
func TestAttackUploadHoard(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Short stall limits keep the test short; 3 s for 256 KiB leaves an
	// honest reader room on a loaded machine.
	seeder := newPeer(t, swarm.ServerConfig{StallTimeout: 3 * time.Second, StallPenalty: 5 * time.Second})
	// 4 MiB chunks: one fills a stream's 2 MiB flow-control window, so a
	// write to a peer that does not read blocks at once.
	opts := chunker.PublishOptions{ChunkSize: 4 << 20, DataShards: 2, ParityShards: 1}
	c := publishWith(t, seeder, 10<<20+5, 32, opts)
	actx, stopAttack := context.WithCancel(ctx)
	defer stopAttack()
	chunks := make([]int, 32)
	for i := range chunks {
		chunks[i] = i % c.man.NumChunks()
	}
	for range 2 {
		a := adversary.NewSwarmPeer(t, adversary.NotFound)
		if n, err := a.HoardUploads(actx, seeder.id(), seeder.addr(), c.id, chunks); err != nil {
			t.Fatalf("attack opened %d streams: %v", n, err)
		}
	}
	testwait.Eventually(t, 10*time.Second, "every attack request accepted or refused", func() error {
		if cn := seeder.srv.Counters(); cn.Accepted+cn.BusyPeer+cn.BusyTotal < 2*32 {
			return fmt.Errorf("counters %+v", cn)
		}
		return nil
	})
	t.Logf("under attack: %+v", seeder.srv.Counters())
	leecher := newPeer(t, swarm.ServerConfig{})
	d, done := startDownload(ctx, t, leecher, c, swarm.Config{}, seeder)
	defer func() { t.Logf("honest progress %+v", d.Progress()) }()
	waitRun(t, "honest leecher", done, 25*time.Second)
	checkOutput(t, leecher, c)
	up, nchunks := seeder.srv.Stats()
	t.Logf("after the honest download: %+v; served %d chunks, %d bytes", seeder.srv.Counters(), nchunks, up)
	// Each attacker stalls once (its two slots at most), then serves a
	// penalty: its other requests are refused without a chunk being read
	// for them (a small chunk may still fit its flow-control window and
	// complete). With slots held for the 60 s write timeout, as before the
	// fix, the attack's requests would still be queued.
	testwait.Eventually(t, 10*time.Second, "every attack request ended", func() error {
		if cn := seeder.srv.Counters(); cn.Queued != 0 || cn.Sending != 0 {
			return fmt.Errorf("counters %+v", cn)
		}
		return nil
	})
	cn := seeder.srv.Counters()
	t.Logf("server counters %+v", cn)
	if cn.Stalled < 2 || cn.BusyStalled < 2*(32-swarm.DefaultSendPerPeer)-4 {
		t.Errorf("%d uploads stalled and %d requests refused for stalling; want both attackers cut off and nearly all their other requests refused unread", cn.Stalled, cn.BusyStalled)
	}
	if cn.Stalled > 4 {
		t.Errorf("%d uploads stalled; after a stall a peer's other requests should be refused unread", cn.Stalled)
	}
}
