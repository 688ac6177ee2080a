package adversary

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay"
)

// The floods reach a real victim through real sockets and its caps count
// them; Stop ends every goroutine the flood started.

func runVictim(t *testing.T, cfg overlay.Config) *overlay.Node {
	t.Helper()
	cfg.ListenAddr = "127.0.0.1:0"
	n, err := overlay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); n.Run(context.Background()) }()
	t.Cleanup(func() { n.Close(); <-done })
	return n
}

func TestHalfOpenFlood(t *testing.T) {
	leakcheck.Check(t)
	v := runVictim(t, overlay.Config{MaxHandshakes: 8, MaxHandshakesPerIP: 4, HandshakeTimeout: time.Minute})
	f, err := HalfOpenFlood(context.Background(), v.LocalAddr(), []string{"127.0.1.1:0"}, 8, 200, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 20*time.Second, "the flood holds the address's 4 handshakes and is refused more", func() error {
		if s := v.Stats(); s.Handshakes != 4 || s.RefusedIPHandshakes == 0 {
			return fmt.Errorf("%d handshakes in progress, %d refused per address", s.Handshakes, s.RefusedIPHandshakes)
		}
		return nil
	})
	vol := f.Stop()
	if vol.Sent < 5 || vol.OK < 4 || vol.Failed == 0 {
		t.Fatalf("volume %+v: want at least 5 handshakes started, 4 reaching the certificate, some refused", vol)
	}
}

func TestReconnectFlood(t *testing.T) {
	leakcheck.Check(t)
	v := runVictim(t, overlay.Config{MaxConnsPerPeer: 2})
	f, err := ReconnectFlood(context.Background(), v.LocalAddr(), "127.0.1.1:0", 200)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 20*time.Second, "the victim refuses 5 connections of the one identity", func() error {
		if n := v.Stats().RefusedPeerConns; n < 5 {
			return fmt.Errorf("%d refused", n)
		}
		return nil
	})
	if s := v.Stats(); s.Conns > 2 {
		t.Errorf("the identity holds %d connections, want at most 2", s.Conns)
	}
	if vol := f.Stop(); vol.Sent < 7 {
		t.Fatalf("volume %+v, want at least 7 dials", vol)
	}
}

func TestDHTFloods(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v := NewDHTPeer(t, "127.0.0.1:0", NotFound)
	x := NewDHTPeer(t, "127.0.0.1:0", NotFound)
	if err := x.DHT.Bootstrap(ctx, []netip.AddrPort{v.Addr()}); err != nil {
		t.Fatal(err)
	}
	in := v.DHT.Stats().MessagesIn
	f, err := DHTRequestFlood(ctx, v.Addr(), []string{"127.0.1.1:0", "127.0.1.2:0"}, 20, 200)
	if err != nil {
		t.Fatal(err)
	}
	// The victim's count also takes x's own requests (its table refresh
	// after joining), so the flood's count is waited for as well.
	testwait.Eventually(t, 20*time.Second, "50 flood requests sent and reaching the victim's DHT", func() error {
		if n, sent := v.DHT.Stats().MessagesIn-in, f.Sent(); n < 50 || sent < 50 {
			return fmt.Errorf("%d received, %d sent", n, sent)
		}
		return nil
	})
	if vol := f.Stop(); vol.Sent < 50 || vol.Failed != 0 {
		t.Fatalf("request flood volume %+v", vol)
	}

	capture, err := NewCapture("127.0.1.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer capture.Close()
	go x.DHT.Bootstrap(ctx, []netip.AddrPort{capture.Addr()})
	ping, err := capture.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ReplayFlood(ctx, ping, v.Addr(), []string{"127.0.1.3:0"}, 4, 200)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 20*time.Second, "the victim drops 10 replays", func() error {
		if n := v.DHT.Stats().Replays; n < 10 {
			return fmt.Errorf("%d replays dropped", n)
		}
		return nil
	})
	if vol := r.Stop(); vol.Sent < 11 {
		t.Fatalf("replay flood volume %+v", vol)
	}
}
