package overlay

import (
	"context"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"net"
	"testing"
	"time"
)

func TestDialUnreachable(t *testing.T) {
	leakcheck.Check(t)
	a := newNode(t, Config{HandshakeTimeout: 300 * time.Millisecond})
	b := newNode(t, Config{})
	// A port with nobody behind it.
	gone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := gone.LocalAddr().(*net.UDPAddr).AddrPort()
	gone.Close()

	start := time.Now()
	_, err = a.Dial(context.Background(), b.PeerID(), addr)
	if err == nil {
		t.Fatal("dial to a dead port succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("dial to a dead port took %v, want about the 300ms handshake timeout", d)
	}
	// A caller's context ends its wait early, long before the handshake
	// would time out.
	slow := newNode(t, Config{HandshakeTimeout: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := slow.Dial(ctx, b.PeerID(), addr); err == nil {
		t.Fatal("dial with an expiring context succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("dial ignored its context: returned after %v", d)
	}
	// The abandoned attempt does not capture a dial to the right address.
	if _, err := slow.Dial(context.Background(), b.PeerID(), b.LocalAddr()); err != nil {
		t.Errorf("dial while an attempt to a dead address runs: %v", err)
	}
	// The failed dials left no state behind: the right address works.
	if _, err := a.Dial(context.Background(), b.PeerID(), b.LocalAddr()); err != nil {
		t.Errorf("dial after failed dials: %v", err)
	}
}
