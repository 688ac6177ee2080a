package overlay

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// community records the messages an Endpoint hands it.
type community struct{ got chan ipv8.Message }

func (c *community) Framing(msgID byte) ipv8.Framing {
	if msgID == 1 {
		return ipv8.FramingSigned
	}
	return ipv8.FramingUnknown
}

func (c *community) HandleMessage(m *ipv8.Message) {
	cp := *m
	cp.Payload = bytes.Clone(m.Payload)
	select {
	case c.got <- cp:
	default:
	}
}

// TestEndpointBesideQUIC sends signed IPv8 messages between the nodes'
// Endpoints over the same sockets that carry a QUIC stream.
func TestEndpointBesideQUIC(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newNode(t, Config{})
	b := newNode(t, Config{})
	b.Handle(tagEcho, echo)
	var cid ipv8.CommunityID
	copy(cid[:], "shoal overlay test..")
	comm := &community{got: make(chan ipv8.Message, 4)}
	if err := b.Endpoint().Register(cid, comm); err != nil {
		t.Fatal(err)
	}
	s, err := a.OpenStream(ctx, b.PeerID(), b.LocalAddr(), tagEcho)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Endpoint().Send(b.LocalAddr(), cid, 1, []byte("hello ipv8")); err != nil {
		t.Fatalf("Endpoint.Send: %v", err)
	}
	select {
	case m := <-comm.got:
		if m.Key != a.PublicKey() || string(m.Payload) != "hello ipv8" || m.From != a.LocalAddr() {
			t.Errorf("message from %s payload %q, want A's key, %q, from %s", m.From, m.Payload, "hello ipv8", a.LocalAddr())
		}
	case <-ctx.Done():
		t.Fatalf("no IPv8 message at B (endpoint stats %+v)", b.Endpoint().Stats())
	}
	if got := roundTrip(t, ctx, s, []byte("quic")); string(got) != "quic" {
		t.Errorf("echo beside IPv8 %q", got)
	}
}
