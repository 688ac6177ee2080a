package swarm_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/adversary"
	"github.com/shoal-p2p/shoal/swarm"
)

// TestAttackFigures is the long form of the swarm attack tests, for
// docs/security.md: an honest 64 MiB download's time with and without each
// flood running against its seeder, in alternated pairs, and the largest
// heap seen (all peers share this process, so it bounds each of them). It runs only with SHOAL_ATTACK_FIGURES=1 (about a minute); it
// logs figures and asserts only that every download completes.
func TestAttackFigures(t *testing.T) {
	if os.Getenv("SHOAL_ATTACK_FIGURES") == "" {
		t.Skip("long form: set SHOAL_ATTACK_FIGURES=1")
	}
	const size = 64 << 20
	opts := chunker.PublishOptions{ChunkSize: 256 << 10, DataShards: 8, ParityShards: 2}
	floods := []struct {
		name   string
		attack func(ctx context.Context, t *testing.T, seeder *tpeer, c content)
	}{
		{"hello hoard (2 x 150 held hellos)", func(ctx context.Context, t *testing.T, seeder *tpeer, c content) {
			for _, n := range []uint32{adversary.MaxHelloBody, uint32(5 + (c.man.NumChunks()+7)/8)} {
				a := adversary.NewSwarmPeer(t, adversary.NotFound)
				a.HoldHellos(ctx, seeder.id(), seeder.addr(), c.id, 150, n)
			}
		}},
		{"upload hoard (4 x 32 unread chunks)", func(ctx context.Context, t *testing.T, seeder *tpeer, c content) {
			chunks := make([]int, 32)
			for i := range chunks {
				chunks[i] = i
			}
			for range 4 {
				a := adversary.NewSwarmPeer(t, adversary.NotFound)
				a.HoardUploads(ctx, seeder.id(), seeder.addr(), c.id, chunks)
			}
		}},
		{"super-seeding hoard (4 x 32 unread chunks with sessions, 2 vouching)", func(ctx context.Context, t *testing.T, seeder *tpeer, c content) {
			chunks := make([]int, 32)
			haves := make([]uint32, 32)
			for i := range chunks {
				chunks[i], haves[i] = i, uint32(i)
			}
			for k := range 4 {
				a := adversary.NewSwarmPeer(t, adversary.NotFound)
				holdSession(ctx, t, a, seeder, c, nil)
				a.HoardUploads(ctx, seeder.id(), seeder.addr(), c.id, chunks)
				if k%2 == 1 {
					holdSession(ctx, t, a, seeder, c, haves)
				}
			}
		}},
	}
	var maxHeap atomic.Uint64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if h := ms.HeapInuse; h > maxHeap.Load() {
					maxHeap.Store(h)
				}
			}
		}
	}()
	for fi, f := range floods {
		seeder := newPeer(t, swarm.ServerConfig{})
		c := publishWith(t, seeder, size, uint64(40+fi), opts)
		base := heapInUse() // the test's own copy of the content is live
		maxHeap.Store(0)
		one := func(attack bool) time.Duration {
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			if attack {
				f.attack(ctx, t, seeder, c)
			}
			leecher := newPeer(t, swarm.ServerConfig{})
			start := time.Now()
			_, done := startDownload(ctx, t, leecher, c, swarm.Config{SkipParity: true}, seeder)
			waitRun(t, f.name, done, 120*time.Second)
			d := time.Since(start)
			leecher.close()
			return d
		}
		var with, without []time.Duration
		for range 3 { // alternated pairs
			without = append(without, one(false))
			with = append(with, one(true))
		}
		line := f.name + ":"
		for i := range with {
			line += fmt.Sprintf(" pair %d: %v unloaded, %v flooded (%.0f %% of unloaded speed);", i+1,
				without[i].Round(time.Millisecond), with[i].Round(time.Millisecond), 100*without[i].Seconds()/with[i].Seconds())
		}
		t.Log(line)
		t.Logf("%s: super-seeding %+v", f.name, seeder.srv.SuperSeedCounters())
		t.Logf("%s: largest heap in use %d MiB above the %d MiB before the downloads (seeder, leecher and attackers in one process)", f.name, (int64(maxHeap.Load())-int64(base))>>20, base>>20)
		seeder.close()
	}
}
