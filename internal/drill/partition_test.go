//go:build linux

package drill

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestPartition: a host is cut off the network mid-download, then put back;
// it resumes and finishes with the right bytes.
func TestPartition(t *testing.T) {
	t.Parallel() // waits on shaped links more than on the CPU
	size := int64(pick(32, 128)) * mib
	cut := pick(8*time.Second, 20*time.Second)
	const down = 50e6 // bits per second, so the download outlasts the cut's start
	ctx, cancel := context.WithTimeout(context.Background(), pick(2*time.Minute, 5*time.Minute))
	defer cancel()
	sg := setStage(ctx, t, 2, "part.bin", size, 3, 0)
	bin, hs, dir, sum, pub, p := sg.bin, sg.hs, sg.dir, sg.sum, sg.pub, sg.p
	if err := hs[1].Shape(down, 0); err != nil {
		t.Fatal(err)
	}
	n := StartNode(t, bin, hs[1], dir, NodeOptions{Bootstrap: []string{pub.Addr()}})

	type result struct {
		path string
		err  error
		at   time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		it, err := n.Get(ctx, p.Link, filepath.Join(n.Home, "out"), 60*time.Second)
		done <- result{it.Path, err, time.Since(start)}
	}()
	floor := time.Duration(float64(size*8) / down * float64(time.Second))
	// Cut a quarter into the download.
	waitMetric(ctx, t, pub, "shoal_bytes_up_total", size/4)
	select {
	case r := <-done:
		t.Fatalf("the download ended before the cut (after %v, err %v): make it bigger or slower", r.at, r.err)
	default:
	}
	before := metric(t, pub, "shoal_bytes_up_total")
	if err := hs[1].Cut(); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Since(start)
	time.Sleep(cut) // the partition lasts this long: the time is the experiment, not a wait for a state
	if err := hs[1].Restore(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		t.Fatalf("the download ended during the cut (after %v, err %v)", r.at, r.err)
	default:
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("after the partition: %v", r.err)
	}
	sameBytes(t, "partitioned host", r.path, sum)
	up := metric(t, pub, "shoal_bytes_up_total")
	figures(t, "%d MiB at %.0f Mbit/s: cut at %v for %v, finished at %v (floor without a cut %v); publisher uploaded %.1f MiB before the cut, %.1f MiB in all",
		size/mib, down/1e6, cutAt.Round(time.Millisecond), cut, r.at.Round(time.Millisecond), floor, float64(before)/mib, float64(up)/mib)
	if before >= size {
		t.Errorf("the publisher had uploaded %d MiB before the cut, the whole content: the cut was not mid-download", before/mib)
	}
}
