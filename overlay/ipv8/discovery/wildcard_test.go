package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// TestWildcardBindAnnouncesInterface: a node whose socket is bound to
// 0.0.0.0 announces, as its LAN address, the interface address that
// reaches the peer (127.0.0.1 for a loopback peer) with its port, never
// 0.0.0.0. Real sockets.
func TestWildcardBindAnnouncesInterface(t *testing.T) {
	wild, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatal(err)
	}
	defer wild.Close()
	lo, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	epW, _ := ipv8.NewEndpoint(wild, ipv8.Config{Key: testKey(t)})
	epL, _ := ipv8.NewEndpoint(lo, ipv8.Config{Key: testKey(t)})
	loAddr := lo.LocalAddr().(*net.UDPAddr).AddrPort()
	cfg := Config{WalkInterval: 50 * time.Millisecond, BootstrapInterval: 100 * time.Millisecond, Bootstrap: []netip.AddrPort{loAddr}}
	w, err := New(epW, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if lan, _ := w.Addresses(); !lan.Addr().IsUnspecified() || lan.Port() == 0 {
		t.Fatalf("wildcard node's configured LAN address %s, want 0.0.0.0 and its port", lan)
	}
	l, err := New(epL, Config{WalkInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, r := range []func(context.Context) error{
		func(ctx context.Context) error { return epW.ServeConn(ctx, wild) },
		func(ctx context.Context) error { return epL.ServeConn(ctx, lo) },
		w.Run, l.Run,
	} {
		wg.Go(func() { _ = r(ctx) })
	}
	defer func() { cancel(); wg.Wait() }()
	want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), wild.LocalAddr().(*net.UDPAddr).AddrPort().Port())
	testwait.Eventually(t, 10*time.Second, "the loopback node lists the wildcard node with its interface address", func() error {
		for _, p := range l.Peers() {
			if p.Key == epW.Public() {
				if p.LAN != want || p.WAN != want {
					return fmt.Errorf("announced LAN %s WAN %s, want %s", p.LAN, p.WAN, want)
				}
				return nil
			}
		}
		return fmt.Errorf("not listed yet: %+v", l.Peers())
	})
}
