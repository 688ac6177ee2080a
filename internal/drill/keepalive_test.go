//go:build linux

package drill

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/seed"
)

// TestCaptureSeesPlaintext checks the capture the NAT drills trust: bytes
// of a plaintext sent in the clear across a host are found.
func TestCaptureSeesPlaintext(t *testing.T) {
	nt := New(t, 2)
	hs := nt.Hosts()
	plain := make([]byte, 64<<10)
	for i := range plain {
		plain[i] = byte(i*7 + i>>8)
	}
	c, err := StartCapture(hs[1], plain)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	rx := udpIn(t, hs[1].NS, hs[1].Addr.String()+":9000")
	tx := udpIn(t, hs[0].NS, hs[0].Addr.String()+":0")
	for off := 0; off < len(plain); off += 1024 {
		tx.WriteToUDPAddrPort(plain[off:off+1024], rx.LocalAddr().(*net.UDPAddr).AddrPort())
		recvFrom(rx)
	}
	if _, _, hits := c.Stop(); hits == 0 {
		t.Fatal("the capture found no piece of a plaintext sent in the clear")
	}
}

// TestNATKeepAlive: two hosts behind cone NATs whose routers forget a UDP
// binding after 10 s of silence. After a first download, the nodes stay
// idle for longer than that; what they send meanwhile (discovery's walk,
// relay registrations) is measured on the publisher's host, and must keep
// the binding between the two open: a second download connects directly
// again, and the router still holds the binding.
func TestNATKeepAlive(t *testing.T) {
	t.Parallel() // waits on links and timers more than on the CPU
	if why := natAvailable(); why != "" {
		t.Skip(why)
	}
	const timeout = 10 // seconds
	idle := pick(25*time.Second, 120*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), idle+3*time.Minute)
	defer cancel()
	bin := Binary(t)
	nt := NewPublic(t, 1)
	ra, rb := nt.AddRouter(Cone, false), nt.AddRouter(Cone, false)
	for _, r := range []*Router{ra, rb} {
		if err := r.SetUDPTimeout(timeout); err != nil {
			t.Skipf("cannot set conntrack's UDP timeout in a namespace here: %v", err)
		}
	}
	ha, hb := ra.AddHost(), rb.AddHost()
	dir := t.TempDir()
	intro := StartNode(t, bin, nt.Hosts()[0], dir, NodeOptions{Config: `{"relay": true}`})
	opts := NodeOptions{Bootstrap: []string{intro.Addr()}, Config: `{"use_relays": true}`}
	a, b := StartNode(t, bin, ha, dir, opts), StartNode(t, bin, hb, dir, opts)
	var links []string
	for i := range 2 {
		src := filepath.Join(dir, fmt.Sprintf("src%d", i), "f.bin")
		writeRandom(t, src, 1*mib, uint64(40+i))
		p, err := a.Publish(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := chunker.ParseLink(p.Link)
		l.Peers = nil
		links = append(links, l.String())
	}
	get := func(i int) (time.Duration, string) {
		start := time.Now()
		if _, err := b.Get(ctx, links[i], filepath.Join(b.Home, fmt.Sprint("out", i)), 30*time.Second); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		took := time.Since(start)
		peers, err := b.Peers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range peers {
			if p.PeerID == a.Status.PeerID {
				return took, p.Path
			}
		}
		return took, ""
	}
	took0, path0 := get(0)
	if path0 != seed.PathDirect {
		t.Fatalf("first download's path %q, want direct", path0)
	}
	capt, err := StartCapture(ha, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(idle) // the idle period is what is measured
	packets, bytes, _ := capt.Stop()
	m, err := ra.Mappings()
	if err != nil {
		t.Fatal(err)
	}
	binding := fmt.Sprintf("dst=%s", rb.Public)
	took1, path1 := get(1)
	figures(t, "routers forget UDP bindings after %d s; idle %v: the publisher's host carried %d packets, %d bytes (%.1f packets/s, %.0f bytes/s in both directions, for the introducer, the relay and one peer); downloads of 1 MiB took %v (%s) before and %v (%s) after",
		timeout, idle, packets, bytes, float64(packets)/idle.Seconds(), float64(bytes)/idle.Seconds(), took0.Round(time.Millisecond), path0, took1.Round(time.Millisecond), path1)
	if !strings.Contains(m, binding) {
		t.Errorf("after %v idle the publisher's router holds no binding towards the other router (%s):\n%s", idle, binding, m)
	}
	if path1 != seed.PathDirect {
		t.Errorf("second download's path %q, want direct", path1)
	}
}
