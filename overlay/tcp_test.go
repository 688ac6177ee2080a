package overlay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

const tagSink byte = 0x02

// tcpEcho serves tagEcho on TCP and records the peers it served.
type tcpEcho struct {
	mu    sync.Mutex
	peers []identity.PeerID
}

func (e *tcpEcho) serve(ctx context.Context, peer identity.PeerID, s overlay.Stream) {
	e.mu.Lock()
	e.peers = append(e.peers, peer)
	e.mu.Unlock()
	io.Copy(s, s)
	s.Close()
}

func (e *tcpEcho) served() []identity.PeerID {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]identity.PeerID(nil), e.peers...)
}

// echoOver sends msg on s and checks the echo.
func echoOver(t *testing.T, s overlay.Stream, msg string) {
	t.Helper()
	if _, err := s.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	s.Close()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != msg {
		t.Fatalf("echo: %q, %v; want %q", got, err, msg)
	}
}

// bulkEcho opens a bulk stream on c and checks its echo of msg.
func bulkEcho(t *testing.T, ctx context.Context, n *overlay.Node, c *overlay.Conn, msg string) {
	t.Helper()
	s, err := n.OpenBulkStream(ctx, c, tagEcho)
	if err != nil {
		t.Fatalf("bulk stream: %v", err)
	}
	echoOver(t, s, msg)
}

// tcpPeer runs a TCP-enabled node on ip serving echo on both transports.
func tcpPeer(t *testing.T, ip string, cfg overlay.Config) (*overlay.Node, *tcpEcho) {
	t.Helper()
	cfg.ListenAddr = ip + ":0"
	cfg.TCP = true
	n := run(t, cfg, true)
	if !n.TCPAddr().IsValid() {
		t.Fatalf("node on %s has no TCP listener", ip)
	}
	if n.TCPAddr().Port() != n.LocalAddr().Port() {
		t.Fatalf("TCP listener on %s, UDP on %s: want one port", n.TCPAddr(), n.LocalAddr())
	}
	e := &tcpEcho{}
	n.HandleTCP(tagEcho, e.serve)
	return n, e
}

// TestTCPBulkStreamMovesToTCP: the first bulk stream to a peer goes over
// QUIC and starts a TCP dial to the peer's address; once the session is up,
// bulk streams take it, authenticated as the same peer.
func TestTCPBulkStreamMovesToTCP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, _ := tcpPeer(t, "127.0.0.1", overlay.Config{})
	b, be := tcpPeer(t, "127.0.0.1", overlay.Config{})
	c, err := a.Dial(ctx, b.PeerID(), b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	bulkEcho(t, ctx, a, c, "first")
	testwait.Eventually(t, 10*time.Second, "a TCP session to the peer", func() error {
		if n := a.Stats().TCP.Sessions; n != 1 {
			return fmt.Errorf("%d sessions", n)
		}
		return nil
	})
	bulkEcho(t, ctx, a, c, "second, over TCP")
	if got := be.served(); len(got) != 1 || got[0] != a.PeerID() {
		t.Fatalf("TCP handler served %v, want once for %s", got, a.PeerID().Short())
	}
	if st := b.Stats().TCP; st.Streams != 1 || st.Sessions != 1 {
		t.Fatalf("peer's TCP stats %+v, want 1 stream on 1 session", st)
	}
}

// TestTCPNoListenerStaysOnQUIC: a peer without TCP gets every bulk stream
// over QUIC, and the node tries TCP there once, not per stream.
func TestTCPNoListenerStaysOnQUIC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, _ := tcpPeer(t, "127.0.0.1", overlay.Config{})
	b := run(t, overlay.Config{ListenAddr: "127.0.0.1:0"}, true)
	c, err := a.Dial(ctx, b.PeerID(), b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	bulkEcho(t, ctx, a, c, "one")
	testwait.Eventually(t, 10*time.Second, "the TCP dial to fail", func() error {
		if st := a.Stats().TCP; st.DialFails != 1 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	for i := range 3 {
		bulkEcho(t, ctx, a, c, fmt.Sprint("again ", i))
	}
	if st := a.Stats().TCP; st.Dials != 1 || st.Sessions != 0 {
		t.Fatalf("TCP stats %+v, want 1 dial and no session", st)
	}
}

// TestTCPWrongPeer: a TCP listener answering with another key than the
// one dialled fails the dial with ErrWrongPeer.
func TestTCPWrongPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, _ := tcpPeer(t, "127.0.0.1", overlay.Config{})
	b, _ := tcpPeer(t, "127.0.0.1", overlay.Config{})
	other, err := identity.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	err = a.DialTCP(ctx, other.PeerID(), b.TCPAddr())
	if !errors.Is(err, overlay.ErrWrongPeer) {
		t.Fatalf("DialTCP to the wrong key: %v, want ErrWrongPeer", err)
	}
	if st := a.Stats().TCP; st.Sessions != 0 {
		t.Fatalf("a session is up after a wrong-peer dial: %+v", st)
	}
}

// tcpHonest makes a peer on 127.0.0.2 that reaches v over TCP and gets an
// echo back through it.
func tcpHonest(t *testing.T, ctx context.Context, v *overlay.Node) {
	t.Helper()
	h, _ := tcpPeer(t, "127.0.0.2", overlay.Config{})
	if err := h.DialTCP(ctx, v.PeerID(), v.TCPAddr()); err != nil {
		t.Fatalf("honest peer locked out of TCP: %v (victim %+v)", err, v.Stats().TCP)
	}
	c, err := h.Dial(ctx, v.PeerID(), v.LocalAddr())
	if err != nil {
		t.Fatalf("honest QUIC dial: %v", err)
	}
	bulkEcho(t, ctx, h, c, "hello")
	if st := h.Stats().TCP; st.Sessions != 1 {
		t.Fatalf("honest stats %+v, want its stream on the TCP session", st)
	}
}

// TestAttackTCPHalfOpen: 40 TCP connections from one address that never
// start TLS hold at most MaxHandshakesPerIP handshake slots; the rest are
// closed at once and counted, and an honest peer from another address
// still gets a session.
func TestAttackTCPHalfOpen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, _ := tcpPeer(t, "127.0.0.1", overlay.Config{MaxConns: 32, MaxHandshakes: 8, MaxHandshakesPerIP: 4, HandshakeTimeout: time.Minute})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	for range 40 {
		c, err := d.DialContext(ctx, "tcp", v.TCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	testwait.Eventually(t, 10*time.Second, "the attacker's extra connections refused", func() error {
		if st := v.Stats().TCP; st.RefusedIPHandshakes != 36 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	tcpHonest(t, ctx, v)
}

// TestAttackTCPBuffers: an authenticated peer that opens more streams than
// MaxIncomingStreams on a handler that never reads, and writes a MiB on
// each, makes the victim hold at most the first windows of the streams it
// accepts (256 KiB each) plus its growth budget (MaxConnWindow); the
// streams beyond the cap are reset; an honest peer still gets its echo
// over TCP.
func TestAttackTCPBuffers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const (
		streams = 16
		growth  = 2 << 20
		bound   = streams*256<<10 + growth
	)
	v, _ := tcpPeer(t, "127.0.0.1", overlay.Config{MaxIncomingStreams: streams, MaxConnWindow: growth, InitialConnWindow: 1 << 20, InitialStreamWindow: 1 << 20})
	v.HandleTCP(tagSink, func(ctx context.Context, _ identity.PeerID, s overlay.Stream) {
		<-ctx.Done() // reads nothing: the attacker's bytes pile up
	})
	a, _ := tcpPeer(t, "127.0.0.1", overlay.Config{})
	if err := a.DialTCP(ctx, v.PeerID(), v.TCPAddr()); err != nil {
		t.Fatal(err)
	}
	c, err := a.Dial(ctx, v.PeerID(), v.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	payload := make([]byte, 1<<20)
	for range 64 {
		s, err := a.OpenBulkStream(ctx, c, tagSink)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.SetWriteDeadline(time.Now().Add(3 * time.Second))
			s.Write(payload) // blocks once the victim's window is full, or fails when reset
		}()
	}
	testwait.Eventually(t, 20*time.Second, "the victim to hold the accepted streams' first windows", func() error {
		if st := v.Stats().TCP; st.Streams < streams {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	if st := v.Stats().TCP; st.BufferBytes > bound || st.Streams > streams {
		t.Fatalf("victim holds %d bytes of TCP receive buffers on %d streams, bound %d on %d", st.BufferBytes, st.Streams, bound, streams)
	}
	tcpHonest(t, ctx, v)
	wg.Wait()
	if st := v.Stats().TCP; st.BufferBytes > bound {
		t.Fatalf("victim holds %d bytes of TCP receive buffers, bound %d", st.BufferBytes, bound)
	}
	t.Logf("victim: %+v", v.Stats().TCP)
}

// TestTCPStreamTagWithFirstWrite: an opened TCP stream sends its tag with
// its first write (merged when small, ahead of it when large), or alone
// when it is closed without writing; every way reaches the tag's handler
// with the bytes intact.
func TestTCPStreamTagWithFirstWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, _ := tcpPeer(t, "127.0.0.1", overlay.Config{})
	b, be := tcpPeer(t, "127.0.0.1", overlay.Config{})
	c, err := a.Dial(ctx, b.PeerID(), b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.DialTCP(ctx, b.PeerID(), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	bulkEcho(t, ctx, a, c, "small: one frame with the tag")
	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	bulkEcho(t, ctx, a, c, string(big))
	s, err := a.OpenBulkStream(ctx, c, tagEcho)
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // nothing written: the tag goes alone
	if got, err := io.ReadAll(s); err != nil || len(got) != 0 {
		t.Fatalf("echo of an empty stream: %d bytes, %v", len(got), err)
	}
	if n := len(be.served()); n != 3 {
		t.Fatalf("TCP handler served %d streams, want 3", n)
	}
	if st := b.Stats().TCP; st.Streams != 3 {
		t.Fatalf("peer's TCP stats %+v, want 3 streams", st)
	}
}
