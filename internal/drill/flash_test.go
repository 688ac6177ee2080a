//go:build linux

package drill

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestFlashCrowd: one publisher, many hosts get the same content at once,
// half of them behind slow links. All finish with the right bytes, the fast
// ones well before a slow link could even carry the content, and the
// publisher uploads far less than one copy per host.
func TestFlashCrowd(t *testing.T) {
	hosts := pick(6, 12)
	size := int64(pick(32, 256)) * mib
	// Bits per second. On a shared 2-core machine the crowd is CPU-bound at
	// a few hundred Mbit/s in all, so the slow links must be well below a
	// fast host's share for the comparison to mean anything.
	const fast, pubUp = 400e6, 200e6
	slow := pick(30e6, 15e6)
	ctx, cancel := context.WithTimeout(context.Background(), pick(3*time.Minute, 10*time.Minute))
	defer cancel()
	sg := setStage(ctx, t, hosts+1, "crowd.bin", size, 1, pubUp)
	bin, hs, dir, sum, pub, p := sg.bin, sg.hs, sg.dir, sg.sum, sg.pub, sg.p
	rate := make([]float64, hosts)
	nodes := make([]*Node, hosts)
	for i := range hosts {
		rate[i] = fast
		if i%2 == 1 {
			rate[i] = slow
		}
		if err := hs[i+1].Shape(int64(rate[i]), 0); err != nil {
			t.Fatal(err)
		}
		nodes[i] = StartNode(t, bin, hs[i+1], dir, NodeOptions{Bootstrap: []string{pub.Addr()}})
	}

	took := make([]time.Duration, hosts)
	errs := make([]error, hosts)
	paths := make([]string, hosts)
	var wg sync.WaitGroup
	start := time.Now()
	for i, n := range nodes {
		wg.Go(func() {
			it, err := n.Get(ctx, p.Link, filepath.Join(n.Home, "out"), 60*time.Second)
			took[i], errs[i], paths[i] = time.Since(start), err, it.Path
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("host %d (%.0f Mbit/s): %v", i+1, rate[i]/1e6, err)
		}
		sameBytes(t, fmt.Sprintf("host %d", i+1), paths[i], sum)
	}
	st, err := pub.LiveStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	up := st.BytesUp

	var fastT, slowT []time.Duration
	for i := range hosts {
		if rate[i] == fast {
			fastT = append(fastT, took[i])
		} else {
			slowT = append(slowT, took[i])
		}
	}
	slices.Sort(fastT)
	slices.Sort(slowT)
	slowFloor := time.Duration(float64(size*8) / slow * float64(time.Second))
	figures(t, "%d hosts x %d MiB: fast (%.0f Mbit/s) %v, slow (%.0f Mbit/s) %v (floor %v); publisher (up %.0f Mbit/s) uploaded %.1f MiB = %.2f copies",
		hosts, size/mib, fast/1e6, fastT, slow/1e6, slowT, slowFloor.Round(time.Millisecond), pubUp/1e6, float64(up)/mib, float64(up)/float64(size))

	// Fast hosts are not held back: the slowest fast host finishes well
	// before the quickest slow host (whose link cannot beat slowFloor).
	if limit := slowT[0] * 8 / 10; fastT[len(fastT)-1] >= limit {
		t.Errorf("slowest fast host took %v, not less than 80%% of the quickest slow host's %v", fastT[len(fastT)-1], slowT[0])
	}
	if limit := int64(hosts) * size / 2; up > limit {
		t.Errorf("publisher uploaded %d MiB, more than half of %d copies (%d MiB)", up/mib, hosts, limit/mib)
	}
}
