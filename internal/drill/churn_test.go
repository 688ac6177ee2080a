//go:build linux

package drill

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestChurn: while a crowd downloads, a random downloader is killed every
// few seconds and a new host joins and starts downloading. Every downloader
// that was never killed finishes with the right bytes.
func TestChurn(t *testing.T) {
	t.Parallel() // waits on shaped links more than on the CPU
	initial := pick(5, 10)
	kills := pick(3, 8)
	every := pick(1500*time.Millisecond, 3*time.Second)
	size := int64(pick(32, 128)) * mib
	const down = 60e6 // bits per second per host
	ctx, cancel := context.WithTimeout(context.Background(), pick(3*time.Minute, 10*time.Minute))
	defer cancel()
	sg := setStage(ctx, t, 1+initial, "churn.bin", size, 4, 200e6)
	bin, nt, hs, dir, sum, pub, p := sg.bin, sg.nt, sg.hs, sg.dir, sg.sum, sg.pub, sg.p
	rng := rand.New(rand.NewPCG(4, 4))

	type downloader struct {
		n      *Node
		killed bool
		done   chan struct{}
		path   string
		err    error
		took   time.Duration
	}
	var mu sync.Mutex // guards killed and the list
	var all []*downloader
	start := func(h *Host) {
		if err := h.Shape(down, down); err != nil {
			t.Fatal(err)
		}
		d := &downloader{n: StartNode(t, bin, h, dir, NodeOptions{Bootstrap: []string{pub.Addr()}}), done: make(chan struct{})}
		mu.Lock()
		all = append(all, d)
		mu.Unlock()
		go func() {
			defer close(d.done)
			t0 := time.Now()
			it, err := d.n.Get(ctx, p.Link, filepath.Join(d.n.Home, "out"), 60*time.Second)
			d.path, d.err, d.took = it.Path, err, time.Since(t0)
		}()
	}
	for _, h := range hs[1:] {
		start(h)
	}
	t0 := time.Now()
	killedAt := []time.Duration{}
	for k := 0; k < kills; k++ {
		time.Sleep(every) // paces the kills: one every so often, whatever the downloads are doing
		mu.Lock()
		var alive []*downloader
		for _, d := range all {
			select {
			case <-d.done:
			default:
				if !d.killed {
					alive = append(alive, d)
				}
			}
		}
		var victim *downloader
		if len(alive) > 1 { // keep one downloader alive at least
			victim = alive[rng.IntN(len(alive))]
			victim.killed = true
		}
		mu.Unlock()
		if victim == nil {
			break
		}
		victim.n.Kill()
		killedAt = append(killedAt, time.Since(t0).Round(time.Millisecond))
		start(nt.AddHost())
	}
	survivors, times := 0, []time.Duration{}
	for _, d := range all {
		<-d.done
		if d.killed {
			continue
		}
		survivors++
		if d.err != nil {
			t.Errorf("surviving host %s: %v", d.n.Host.NS, d.err)
			continue
		}
		times = append(times, d.took.Round(time.Millisecond))
		sameBytes(t, fmt.Sprintf("host %s", d.n.Host.NS), d.path, sum)
	}
	up := metric(t, pub, "shoal_bytes_up_total")
	figures(t, "%d MiB, %d downloaders at first, killed %d at %v, %d hosts joined; %d survivors finished in %v; publisher uploaded %.1f MiB = %.2f copies",
		size/mib, initial, len(killedAt), killedAt, len(killedAt), survivors, times, float64(up)/mib, float64(up)/float64(size))
	if len(killedAt) == 0 {
		t.Error("nobody was killed: the downloads ended before the churn began")
	}
}
