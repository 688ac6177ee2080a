package overlay

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/netem"
)

// lossyNode starts a node on a netem-wrapped loopback socket.
func lossyNode(t *testing.T, cfg netem.Config, ncfg Config) (*Node, *netem.Conn) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := netem.Wrap(udp, cfg)
	if err != nil {
		udp.Close()
		t.Fatal(err)
	}
	ncfg.PacketConn = pc
	return newNode(t, ncfg), pc
}

func TestStreamOverLossyNetwork(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, aNet := lossyNode(t, netem.Config{Loss: 0.02, Delay: 20 * time.Millisecond, Seed: 1}, Config{})
	b, bNet := lossyNode(t, netem.Config{Loss: 0.02, Delay: 20 * time.Millisecond, Seed: 2}, Config{})

	done := make(chan []byte, 1)
	b.Handle(tagSink, func(ctx context.Context, c *Conn, s *quic.Stream) {
		got, _ := io.ReadAll(s)
		done <- got
	})
	msg := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range msg {
		msg[i] = byte(rng.Uint32())
	}
	s, err := a.OpenStream(ctx, b.PeerID(), b.LocalAddr(), tagSink)
	if err != nil {
		t.Fatalf("OpenStream over 2%% loss, 20 ms delay: %v", err)
	}
	if _, err := s.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	s.Close()
	select {
	case got := <-done:
		if !bytes.Equal(got, msg) {
			t.Errorf("received %d bytes, want the %d sent, identical", len(got), len(msg))
		}
	case <-ctx.Done():
		t.Fatal("transfer did not finish in time")
	}
	as, bs := aNet.Stats(), bNet.Stats()
	if as.Dropped+bs.Dropped == 0 {
		t.Errorf("netem dropped no packets (A %+v, B %+v): the test did not test loss", as, bs)
	}
	t.Logf("netem A %+v; B %+v", as, bs)
}

// TestConnectionSurvivesShortCut cuts both directions for less than the
// idle timeout while a transfer runs; the same connection finishes it.
func TestConnectionSurvivesShortCut(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, aNet := lossyNode(t, netem.Config{Seed: 5}, Config{IdleTimeout: 5 * time.Second})
	b, bNet := lossyNode(t, netem.Config{Seed: 6}, Config{IdleTimeout: 5 * time.Second})
	b.Handle(tagEcho, echo)
	s, err := a.OpenStream(ctx, b.PeerID(), b.LocalAddr(), tagEcho)
	if err != nil {
		t.Fatal(err)
	}
	before := a.Conn(b.PeerID()).QUIC()
	for _, n := range []*netem.Conn{aNet, bNet} {
		if err := n.Update(netem.Config{Loss: 1}); err != nil {
			t.Fatal(err)
		}
	}
	time.AfterFunc(500*time.Millisecond, func() {
		aNet.Update(netem.Config{})
		bNet.Update(netem.Config{})
	})
	msg := bytes.Repeat([]byte("cut "), 64<<10)
	if got := roundTrip(t, ctx, s, msg); !bytes.Equal(got, msg) {
		t.Errorf("echo across a cut: %d bytes back, want %d", len(got), len(msg))
	}
	if c := a.Conn(b.PeerID()); c == nil || c.QUIC() != before {
		t.Errorf("the connection was replaced across a short cut")
	}
}
