package swarm_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/swarm"
)

// gatedSource blocks ReadChunk until gate is closed and hides chunk 0.
type gatedSource struct {
	swarm.Source
	entered chan struct{}
	gate    chan struct{}
}

func (g gatedSource) Has(i int) bool { return i != 0 && g.Source.Has(i) }

// ReadChunk reports itself on entered, unless the gate is open already,
// and waits for the gate.
func (g gatedSource) ReadChunk(i int, buf []byte) ([]byte, error) {
	select {
	case g.entered <- struct{}{}:
	case <-g.gate:
	}
	<-g.gate
	return g.Source.ReadChunk(i, buf)
}

// seedGated publishes content on server and serves it through a
// gatedSource. The returned function opens the gate (once); it also runs at
// cleanup, so a failing test does not leave reads blocked.
func seedGated(t *testing.T, server *tpeer, seed uint64) (content, gatedSource, func()) {
	t.Helper()
	c := publish(t, server, 256<<10, seed)
	g := gatedSource{Source: swarm.ItemSource(server.item(t, c)), entered: make(chan struct{}), gate: make(chan struct{})}
	server.srv.Seed(c.id, g)
	var once sync.Once
	open := func() { once.Do(func() { close(g.gate) }) }
	t.Cleanup(open)
	return c, g, open
}

// askChunk requests chunk i of id from s and reports anything but an OK
// answer as an error.
func askChunk(ctx context.Context, c, s *tpeer, id chunker.ContentID, i uint32) error {
	st, _, err := askErr(ctx, c, s, swarm.Request{Kind: swarm.KindChunk, ID: id, Index: i})
	if err == nil && st != swarm.StatusOK {
		err = &swarm.StatusError{Status: st}
	}
	return err
}

// ask sends one raw request from c to s and returns the response status and
// payload length.
func ask(ctx context.Context, t *testing.T, c, s *tpeer, req swarm.Request) (swarm.Status, uint32) {
	t.Helper()
	status, n, err := askErr(ctx, c, s, req)
	if err != nil {
		t.Fatalf("%v request: %v", req.Kind, err)
	}
	return status, n
}

func askErr(ctx context.Context, c, s *tpeer, req swarm.Request) (swarm.Status, uint32, error) {
	st, err := c.dialer().OpenStream(ctx, s.id(), s.addr())
	if err != nil {
		return 0, 0, err
	}
	defer st.CancelRead(swarm.CodeCancelled)
	if _, err := st.Write(swarm.AppendRequest(nil, req)); err != nil {
		return 0, 0, err
	}
	st.Close()
	var hdr [5]byte
	if _, err := io.ReadFull(st, hdr[:]); err != nil {
		return 0, 0, err
	}
	return swarm.DecodeResponseHeader(hdr[:])
}

func TestServerAnswers(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	server := newPeer(t, swarm.ServerConfig{MaxPerPeer: 1})
	c, g, openGate := seedGated(t, server, 7)
	client := newPeer(t, swarm.ServerConfig{})

	// Hold the one upload slot the client may use.
	held := make(chan error, 1)
	go func() { held <- askChunk(ctx, client, server, c.id, 1) }()
	<-g.entered

	manLen, _ := c.man.Encode()
	tests := []struct {
		name  string
		req   swarm.Request
		want  swarm.Status
		wantN int
	}{
		{"manifest", swarm.Request{Kind: swarm.KindManifest, ID: c.id}, swarm.StatusOK, len(manLen)},
		{"leaves", swarm.Request{Kind: swarm.KindLeaves, ID: c.id}, swarm.StatusOK, 32 * c.man.NumChunks()},
		{"unknown content", swarm.Request{Kind: swarm.KindManifest, ID: chunker.ContentID{1}}, swarm.StatusNotFound, -1},
		{"index out of range", swarm.Request{Kind: swarm.KindChunk, ID: c.id, Index: 1 << 20}, swarm.StatusBadRequest, -1},
		{"chunk not held", swarm.Request{Kind: swarm.KindChunk, ID: c.id, Index: 0}, swarm.StatusNotHave, -1},
		{"busy", swarm.Request{Kind: swarm.KindChunk, ID: c.id, Index: 2}, swarm.StatusBusy, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, n := ask(ctx, t, client, server, tc.req)
			if s != tc.want || (tc.wantN >= 0 && int(n) != tc.wantN) {
				t.Fatalf("status %v, length %d; want %v, length %d", s, n, tc.want, tc.wantN)
			}
		})
	}
	t.Run("garbage is reset", func(t *testing.T) {
		st, err := client.dialer().OpenStream(ctx, server.id(), server.addr())
		if err != nil {
			t.Fatal(err)
		}
		st.Write([]byte{9, 9, 9, 9})
		st.Close()
		var se *quic.StreamError
		if _, err := io.ReadAll(st); !errors.As(err, &se) || se.ErrorCode != swarm.CodeProtocol {
			t.Fatalf("reading the answer to garbage: %v, want a reset with code %#x", err, swarm.CodeProtocol)
		}
	})
	openGate()
	if err := <-held; err != nil {
		t.Fatalf("held request: %v, want ok", err)
	}
}

// TestServerTakesTurns: with SendPerPeer 1, a peer's accepted chunk
// requests are answered one at a time (the others wait, none is refused),
// while another peer is served alongside.
func TestServerTakesTurns(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	server := newPeer(t, swarm.ServerConfig{MaxPerPeer: 8, SendPerPeer: 1})
	c, g, openGate := seedGated(t, server, 8)
	a, b := newPeer(t, swarm.ServerConfig{}), newPeer(t, swarm.ServerConfig{})

	results := make(chan error, 4)
	get := func(p *tpeer, i uint32) { results <- askChunk(ctx, p, server, c.id, i) }
	for i := uint32(1); i <= 3; i++ {
		go get(a, i)
	}
	<-g.entered // a's first turn
	// A claim about absence needs a window: 300 ms is long enough for the
	// other accepted requests to reach the source if turns were not kept.
	select {
	case <-g.entered:
		t.Fatal("a second chunk for the same peer is being read while the first is still being sent")
	case <-time.After(300 * time.Millisecond):
	}
	go get(b, 4)
	select {
	case <-g.entered: // b is served beside a
	case <-time.After(5 * time.Second):
		t.Fatal("another peer waits for the first peer's turn")
	}
	openGate()
	for range 4 {
		if err := <-results; err != nil {
			t.Fatalf("request: %v, want ok (waiting is not busy)", err)
		}
	}
}
