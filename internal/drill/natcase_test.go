//go:build linux

package drill

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/seed"
)

// natCase is one of issue 17's four NAT cases: where the publisher (A) and
// the downloader (B) sit, and what must happen.
type natCase struct {
	name     string
	a, b     NATKind
	sameNAT  bool   // A and B behind one router
	wantPath string // the path B must reach A by
}

var natCases = []natCase{
	{name: "1-cone-cone", a: Cone, b: Cone, wantPath: seed.PathDirect},
	{name: "2-same-nat", a: Cone, sameNAT: true, wantPath: seed.PathLAN},
	{name: "3-symmetric-cone", a: Symmetric, b: Cone, wantPath: seed.PathDirect},
	{name: "4-symmetric-symmetric", a: Symmetric, b: Symmetric, wantPath: seed.PathRelayed},
}

// knownFailures lists the cases (name/bind) that do not work yet, with why.
// A listed case that fails is skipped with its reason after its figures
// are logged; a listed case that works fails the drill, so that the list
// only ever shrinks.
var knownFailures = map[string]string{
	"3-symmetric-cone/wildcard":      "no relay yet: the cone side filters by port, the symmetric side's port towards it is unknown",
	"3-symmetric-cone/lan":           "no relay yet: the cone side filters by port, the symmetric side's port towards it is unknown",
	"4-symmetric-symmetric/wildcard": "no relay yet",
	"4-symmetric-symmetric/lan":      "no relay yet",
}

// natResult is what one case measured.
type natResult struct {
	connected bool
	connect   time.Duration // from the start of "shoal get" to B's first connection to A
	path      string
	conn      string        // B's connection's remote address
	took      time.Duration // the whole get
	err       error
}

// runNATCase builds the case's network, publishes size bytes on A, gets
// them on B by bare content ID (no peer hint: through the DHT and
// discovery only) and reports.
func runNATCase(ctx context.Context, t *testing.T, c natCase, bind string, size int64, rate int64) natResult {
	bin := Binary(t)
	nt := NewPublic(t, 1)
	introHost := nt.Hosts()[0]
	ra := nt.AddRouter(c.a, false)
	rb := ra
	if !c.sameNAT {
		rb = nt.AddRouter(c.b, false)
	}
	ha, hb := ra.AddHost(), rb.AddHost()
	for _, h := range []*Host{ha, hb} {
		if err := h.Shape(rate, rate); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	intro := StartNode(t, bin, introHost, dir, NodeOptions{})
	listen := func(h *Host) string {
		if bind == "lan" {
			return fmt.Sprintf("%s:%d", h.Addr, Port)
		}
		return fmt.Sprintf("0.0.0.0:%d", Port)
	}
	a := StartNode(t, bin, ha, dir, NodeOptions{Bootstrap: []string{intro.Addr()}, Listen: listen(ha)})
	b := StartNode(t, bin, hb, dir, NodeOptions{Bootstrap: []string{intro.Addr()}, Listen: listen(hb)})
	src := filepath.Join(dir, "src", "nat.bin")
	sum := writeRandom(t, src, size, 17)
	p, err := a.Publish(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	l, err := chunker.ParseLink(p.Link)
	if err != nil {
		t.Fatal(err)
	}
	l.Peers = nil // by bare ID

	var r natResult
	start := time.Now()
	done := make(chan struct{})
	var it seed.Item
	go func() {
		defer close(done)
		it, r.err = b.Get(ctx, l.String(), filepath.Join(b.Home, "out"), pick(20*time.Second, 60*time.Second))
		r.took = time.Since(start)
	}()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for watching := true; watching; {
		select {
		case <-done:
			watching = false
		case <-poll.C:
		}
		if r.connected {
			continue
		}
		peers, err := b.Peers(ctx)
		if err != nil {
			continue
		}
		for _, pi := range peers {
			if pi.PeerID == a.Status.PeerID && pi.Path != "" {
				r.connected, r.connect, r.path, r.conn = true, time.Since(start), pi.Path, pi.Conn
			}
		}
	}
	if r.err == nil {
		sameBytes(t, "downloader", it.Path, sum)
	} else {
		for _, n := range []*Node{intro, a, b} {
			peers, err := n.Peers(ctx)
			t.Logf("peers of %s (%s): %+v %v", n.Host.NS, n.Status.PeerID[:12], peers, err)
		}
	}
	return r
}

// TestNAT runs issue 17's four NAT cases, each with the nodes bound to the
// wildcard address and to their LAN address: an introducer on the public
// segment, the publisher and the downloader behind NAT routers, 100 Mbit/s
// links, a download by bare content ID.
func TestNAT(t *testing.T) {
	if why := natAvailable(); why != "" {
		t.Skip(why)
	}
	size := int64(pick(4, 32)) * mib
	const rate = 100e6
	for _, c := range natCases {
		for _, bind := range []string{"wildcard", "lan"} {
			t.Run(c.name+"/"+bind, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), pick(2*time.Minute, 5*time.Minute))
				defer cancel()
				r := runNATCase(ctx, t, c, bind, size, rate)
				mbit := 0.0
				if r.err == nil && r.took > r.connect {
					mbit = float64(size*8) / (r.took - r.connect).Seconds() / 1e6
				}
				figures(t, "%d MiB at %.0f Mbit/s links: connected %v in %v, path %q via %s, get took %v (%.1f Mbit/s after connecting), err %v",
					size/mib, rate/1e6, r.connected, r.connect.Round(time.Millisecond), r.path, r.conn, r.took.Round(time.Millisecond), mbit, r.err)
				ok := r.err == nil && r.path == c.wantPath
				key := c.name + "/" + bind
				if why, known := knownFailures[key]; known {
					if ok {
						t.Fatalf("%s now works: take it off knownFailures", key)
					}
					t.Skipf("known failure (issue 17): %s", why)
				}
				if r.err != nil {
					t.Fatalf("download failed: %v", r.err)
				}
				if r.path != c.wantPath {
					t.Fatalf("path %q, want %q", r.path, c.wantPath)
				}
			})
		}
	}
}
