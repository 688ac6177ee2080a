package overlay

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/shoal-p2p/shoal/internal/leakcheck"
)

// TestBatchingInterop moves 16 MiB each way between a node with batched
// UDP I/O (the default) and one without: the bytes arrive intact, and the
// batching side really sent many packets per system call.
func TestBatchingInterop(t *testing.T) {
	leakcheck.Check(t)
	a := newNode(t, Config{})
	b := newNode(t, Config{NoBatching: true})
	if _, ok := b.pc.(*net.UDPConn); !ok {
		t.Fatalf("NoBatching node socket is %T, want *net.UDPConn", b.pc)
	}
	data := make([]byte, 16<<20)
	rand.NewChaCha8([32]byte{7}).Read(data)
	echo := func(ctx context.Context, c *Conn, s *quic.Stream) {
		got, err := io.ReadAll(s)
		if err != nil {
			s.CancelWrite(1)
			return
		}
		s.Write(got)
		s.Close()
	}
	a.Handle(tagSink, echo)
	b.Handle(tagSink, echo)
	for _, dir := range []struct {
		name     string
		from, to *Node
	}{{"batched to plain", a, b}, {"plain to batched", b, a}} {
		s, err := dir.from.OpenStream(context.Background(), dir.to.PeerID(), dir.to.LocalAddr(), tagSink)
		if err != nil {
			t.Fatalf("%s: %v", dir.name, err)
		}
		go func() { s.Write(data); s.Close() }()
		back, err := io.ReadAll(s)
		if err != nil {
			t.Fatalf("%s: %v", dir.name, err)
		}
		if !bytes.Equal(back, data) {
			t.Fatalf("%s: echoed %d bytes differ from the %d sent", dir.name, len(back), len(data))
		}
	}
	checkBatching(t, a.pc)
}
