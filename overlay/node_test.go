package overlay

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

func TestAuthenticatedStream(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	aEvents, bEvents := newEventLog(), newEventLog()
	a := newNode(t, Config{OnPeer: aEvents.add})
	b := newNode(t, Config{OnPeer: bEvents.add})

	type seen struct {
		id   identity.PeerID
		pk   identity.PublicKey
		addr string
	}
	seenCh := make(chan seen, 1)
	b.Handle(tagEcho, func(ctx context.Context, c *Conn, s *quic.Stream) {
		seenCh <- seen{c.PeerID(), c.PublicKey(), c.RemoteAddr().String()}
		echo(ctx, c, s)
	})

	s, err := a.OpenStream(ctx, b.PeerID(), b.LocalAddr(), tagEcho)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	msg := bytes.Repeat([]byte("shoal "), 10000)
	if got := roundTrip(t, ctx, s, msg); !bytes.Equal(got, msg) {
		t.Errorf("echo returned %d bytes, want the %d sent", len(got), len(msg))
	}

	got := <-seenCh
	if got.id != a.PeerID() {
		t.Errorf("B saw peer %s, want A %s", got.id.Short(), a.PeerID().Short())
	}
	if got.pk != a.PublicKey() {
		t.Errorf("B saw a public key other than A's")
	}
	if got.addr != a.LocalAddr().String() {
		t.Errorf("B saw A at %s, want %s", got.addr, a.LocalAddr())
	}
	c := a.Conn(b.PeerID())
	if c == nil {
		t.Fatal("A has no connection to B after a stream")
	}
	if c.PeerID() != b.PeerID() || c.PublicKey() != b.PublicKey() || !c.Outbound() {
		t.Errorf("A's conn: peer %s outbound %v, want B %s outbound", c.PeerID().Short(), c.Outbound(), b.PeerID().Short())
	}
	if alpn := c.QUIC().ConnectionState().TLS.NegotiatedProtocol; alpn != ALPN {
		t.Errorf("ALPN %q, want %q", alpn, ALPN)
	}
	t.Logf("GSO in use: %v", c.QUIC().ConnectionState().GSO)
	if ev := aEvents.wait(t, time.Second); ev.Kind != PeerConnected || ev.Peer != b.PeerID() || !ev.Outbound {
		t.Errorf("A's first event %v %s outbound=%v, want connected to B outbound", ev.Kind, ev.Peer.Short(), ev.Outbound)
	}
	if ev := bEvents.wait(t, time.Second); ev.Kind != PeerConnected || ev.Peer != a.PeerID() || ev.Outbound {
		t.Errorf("B's first event %v %s outbound=%v, want connected to A inbound", ev.Kind, ev.Peer.Short(), ev.Outbound)
	}
	a.Close()
	if ev := bEvents.wait(t, 5*time.Second); ev.Kind != PeerDisconnected || ev.Peer != a.PeerID() {
		t.Errorf("B's event after A closed: %v %s, want disconnected from A", ev.Kind, ev.Peer.Short())
	}
}

func TestWrongPeer(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newNode(t, Config{})
	b := newNode(t, Config{})
	other, err := identity.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.OpenStream(ctx, other.PeerID(), b.LocalAddr(), tagEcho)
	if !errors.Is(err, ErrWrongPeer) {
		t.Fatalf("dial to B's address expecting another peer: error %v, want ErrWrongPeer", err)
	}
	if c := a.Conn(b.PeerID()); c != nil {
		t.Errorf("A kept a connection to B after a wrong-peer dial")
	}
	if st := a.Stats(); st.Conns != 0 {
		t.Errorf("A has %d connections after a wrong-peer dial, want 0", st.Conns)
	}
	// The right PeerID at the same address works afterwards.
	if _, err := a.Dial(ctx, b.PeerID(), b.LocalAddr()); err != nil {
		t.Errorf("dial with the right PeerID: %v", err)
	}
}

func TestDialUnknownPeer(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newNode(t, Config{})
	b := newNode(t, Config{})
	c, err := a.Dial(ctx, identity.PeerID{}, b.LocalAddr())
	if err != nil {
		t.Fatalf("dial with zero PeerID: %v", err)
	}
	if c.PeerID() != b.PeerID() {
		t.Errorf("dial learned peer %s, want %s", c.PeerID().Short(), b.PeerID().Short())
	}
	if _, err := a.Dial(ctx, a.PeerID(), b.LocalAddr()); !errors.Is(err, ErrSelf) {
		t.Errorf("dial to own PeerID: %v, want ErrSelf", err)
	}
}

func TestConnLimit(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := newNode(t, Config{MaxConns: 1})
	a1 := newNode(t, Config{})
	a2 := newNode(t, Config{})
	if _, err := a1.Dial(ctx, b.PeerID(), b.LocalAddr()); err != nil {
		t.Fatalf("first dial: %v", err)
	}
	_, err := a2.Dial(ctx, b.PeerID(), b.LocalAddr())
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("dial beyond B's limit: %v, want ErrRefused", err)
	}
	testwait.Eventually(t, 10*time.Second, "B registers a1's connection", func() error {
		if n := b.Stats().Conns; n != 1 {
			return fmt.Errorf("B holds %d connections, want 1", n)
		}
		return nil
	})
	if st := b.Stats(); st.Refused < 1 || st.Conns != 1 {
		t.Errorf("B stats refused %d conns %d, want at least 1 and 1", st.Refused, st.Conns)
	}
	// The local side of the cap: b cannot dial out while full.
	if _, err := b.Dial(ctx, a2.PeerID(), a2.LocalAddr()); !errors.Is(err, ErrConnLimit) {
		t.Errorf("dial out from a full node: %v, want ErrConnLimit", err)
	}
}

func TestConnReuse(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events := newEventLog()
	a := newNode(t, Config{OnPeer: events.add})
	b := newNode(t, Config{})
	b.Handle(tagEcho, echo)
	var conns []*quic.Conn
	for i := range 3 {
		s, err := a.OpenStream(ctx, b.PeerID(), b.LocalAddr(), tagEcho)
		if err != nil {
			t.Fatalf("OpenStream %d: %v", i, err)
		}
		if got := roundTrip(t, ctx, s, []byte{byte(i)}); !bytes.Equal(got, []byte{byte(i)}) {
			t.Errorf("stream %d echoed %v", i, got)
		}
		conns = append(conns, a.Conn(b.PeerID()).QUIC())
	}
	if conns[0] != conns[1] || conns[1] != conns[2] {
		t.Errorf("OpenStream calls used different connections")
	}
	testwait.Eventually(t, 10*time.Second, "B registers A's connection", func() error {
		if b.Stats().Conns == 0 {
			return errors.New("B holds no connection")
		}
		return nil
	})
	if sa, sb := a.Stats(), b.Stats(); sa.Conns != 1 || sb.Conns != 1 {
		t.Errorf("connections A %d B %d, want 1 and 1", sa.Conns, sb.Conns)
	}
	if sb := b.Stats(); sb.StreamsHandled != 3 {
		t.Errorf("B handled %d streams, want 3", sb.StreamsHandled)
	}
	if evs := events.all(); len(evs) != 1 {
		t.Errorf("A got %d peer events, want 1 (connected)", len(evs))
	}
}

func TestConcurrentDialsShare(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newNode(t, Config{})
	b := newNode(t, Config{})
	const n = 8
	res := make(chan *Conn, n)
	for range n {
		go func() {
			c, err := a.Dial(ctx, b.PeerID(), b.LocalAddr())
			if err != nil {
				t.Errorf("Dial: %v", err)
			}
			res <- c
		}()
	}
	first := <-res
	for range n - 1 {
		if c := <-res; c != first {
			t.Errorf("concurrent dials returned different connections")
		}
	}
	// A started one handshake for all of them, so B cannot get another.
	if st := a.Stats(); st.Dials != 1 {
		t.Errorf("A started %d dials for %d concurrent callers, want 1", st.Dials, n)
	}
	testwait.Eventually(t, 10*time.Second, "B registers A's connection", func() error {
		if b.Stats().Conns == 0 {
			return errors.New("B holds no connection")
		}
		return nil
	})
	if st := b.Stats(); st.Conns != 1 {
		t.Errorf("B has %d connections after %d concurrent dials, want 1", st.Conns, n)
	}
}

func TestSimultaneousOpen(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newNode(t, Config{DuplicateGrace: 300 * time.Millisecond, KeepAlive: 100 * time.Millisecond})
	b := newNode(t, Config{DuplicateGrace: 300 * time.Millisecond, KeepAlive: 100 * time.Millisecond})
	a.Handle(tagEcho, echo)
	b.Handle(tagEcho, echo)
	errs := make(chan error, 2)
	go func() { _, err := a.Dial(ctx, b.PeerID(), b.LocalAddr()); errs <- err }()
	go func() { _, err := b.Dial(ctx, a.PeerID(), a.LocalAddr()); errs <- err }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("simultaneous dial: %v", err)
		}
	}
	t.Logf("connections after both dials: A %d, B %d", a.Stats().Conns, b.Stats().Conns)
	// Both sides must pick the same connection once both are known.
	testwait.Eventually(t, 10*time.Second, "A and B settle on one connection", func() error {
		ca, cb := a.Conn(b.PeerID()), b.Conn(a.PeerID())
		if ca == nil || cb == nil || !sameConn(t, ca, cb) {
			return fmt.Errorf("A's connection to B %v, B's to A %v: not one connection", ca != nil, cb != nil)
		}
		return nil
	})
	for _, x := range []struct {
		from, to *Node
	}{{a, b}, {b, a}} {
		s, err := x.from.OpenStream(ctx, x.to.PeerID(), x.to.LocalAddr(), tagEcho)
		if err != nil {
			t.Fatalf("OpenStream: %v", err)
		}
		if got := roundTrip(t, ctx, s, []byte("hi")); string(got) != "hi" {
			t.Errorf("echo %q, want hi", got)
		}
	}
	// A duplicate, if both dials won through, is retired despite keep-alives.
	testwait.Eventually(t, 10*time.Second, "one connection per side", func() error { return conns(a, b) })
	if ca, cb := a.Conn(b.PeerID()), b.Conn(a.PeerID()); ca == nil || cb == nil || !sameConn(t, ca, cb) {
		t.Errorf("A and B do not share one connection after retiring duplicates")
	}
}

func TestIdleClose(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	aEvents, bEvents := newEventLog(), newEventLog()
	a := newNode(t, Config{IdleTimeout: 300 * time.Millisecond, OnPeer: aEvents.add})
	b := newNode(t, Config{IdleTimeout: 300 * time.Millisecond, OnPeer: bEvents.add})
	b.Handle(tagEcho, echo)
	s, err := a.OpenStream(ctx, b.PeerID(), b.LocalAddr(), tagEcho)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	roundTrip(t, ctx, s, []byte("x"))
	for name, l := range map[string]*eventLog{"A": aEvents, "B": bEvents} {
		if ev := l.wait(t, time.Second); ev.Kind != PeerConnected {
			t.Errorf("%s first event %v, want connected", name, ev.Kind)
		}
		ev := l.wait(t, 5*time.Second)
		if ev.Kind != PeerDisconnected {
			t.Errorf("%s second event %v, want disconnected", name, ev.Kind)
		}
		var idle *quic.IdleTimeoutError
		if !errors.As(ev.Err, &idle) {
			t.Errorf("%s disconnect cause %v, want an idle timeout", name, ev.Err)
		}
	}
	if c := a.Conn(b.PeerID()); c != nil {
		t.Errorf("A still has a connection to B after idle timeout")
	}
	// A new stream dials again.
	s, err = a.OpenStream(ctx, b.PeerID(), b.LocalAddr(), tagEcho)
	if err != nil {
		t.Fatalf("OpenStream after idle close: %v", err)
	}
	if got := roundTrip(t, ctx, s, []byte("again")); string(got) != "again" {
		t.Errorf("echo after redial %q, want again", got)
	}
}

func TestUnknownTag(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newNode(t, Config{})
	b := newNode(t, Config{})
	s, err := a.OpenStream(ctx, b.PeerID(), b.LocalAddr(), 0xEE)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	_, err = io.ReadAll(s)
	var se *quic.StreamError
	if !errors.As(err, &se) || se.ErrorCode != StreamCodeUnknownTag {
		t.Errorf("reading a stream with an unknown tag: %v, want stream error %#x", err, StreamCodeUnknownTag)
	}
	if st := b.Stats(); st.StreamsBadTag != 1 {
		t.Errorf("B counted %d bad-tag streams, want 1", st.StreamsBadTag)
	}
}

func TestCloseIdempotent(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newNode(t, Config{})
	b := newNode(t, Config{})
	// A handler that blocks until its context ends must not stall Close.
	b.Handle(tagSink, func(ctx context.Context, c *Conn, s *quic.Stream) { <-ctx.Done() })
	s, err := a.OpenStream(ctx, b.PeerID(), b.LocalAddr(), tagSink)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("hold"))
	testwait.Eventually(t, 10*time.Second, "B's handler holds the stream", func() error {
		if n := b.Stats().StreamsHandled; n != 1 {
			return fmt.Errorf("%d streams handled, want 1", n)
		}
		return nil
	})
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	if _, err := a.Dial(ctx, b.PeerID(), b.LocalAddr()); !errors.Is(err, ErrClosed) {
		t.Errorf("Dial after Close: %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close with a blocked handler: %v", err)
	}
}

func TestRun(t *testing.T) {
	leakcheck.Check(t)
	n, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if err := n.Run(context.Background()); err == nil {
		t.Error("Run after Run returned nil, want an error")
	}
	if err := n.Close(); err != nil {
		t.Errorf("Close after Run: %v", err)
	}
}

// TestRunAfterClose: Close without Run releases everything, and Run
// afterwards refuses to start.
func TestRunAfterClose(t *testing.T) {
	leakcheck.Check(t)
	n, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close without Run: %v", err)
	}
	if err := n.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
}

func TestBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative max conns", Config{MaxConns: -1}},
		{"negative idle", Config{IdleTimeout: -time.Second}},
		{"window order", Config{InitialStreamWindow: 2 << 20, MaxStreamWindow: 1 << 20}},
		{"conn window order", Config{InitialConnWindow: 64 << 20, MaxConnWindow: 1 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); !errors.Is(err, ErrBadConfig) {
				t.Errorf("New: %v, want ErrBadConfig", err)
			}
		})
	}
}

// TestForeignClients dials a node with plain quic-go clients that break
// the rules; every handshake must fail and the node must hold no
// connection afterwards.
func TestForeignClients(t *testing.T) {
	leakcheck.Check(t)
	b := newNode(t, Config{})
	kp := mustKey(t)
	cert, err := newCertificate(kp)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		conf *tls.Config
	}{
		{"no client certificate", &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPN}}},
		{"wrong ALPN", &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h3"}, Certificates: []tls.Certificate{cert}}},
		{"non-shoal certificate", &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPN}, Certificates: []tls.Certificate{plainCert(t)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			qc, err := quic.DialAddr(ctx, b.LocalAddr().String(), tt.conf, &quic.Config{HandshakeIdleTimeout: 2 * time.Second})
			if err == nil {
				// TLS 1.3 clients finish before the server checks their
				// certificate; the server must then close at once.
				s, serr := qc.OpenStreamSync(ctx)
				if serr == nil {
					s.Write([]byte{tagEcho})
					_, serr = s.Read(make([]byte, 1))
				}
				qc.CloseWithError(0, "")
				if serr == nil {
					t.Fatalf("foreign client got a working stream")
				}
			}
			if st := b.Stats(); st.Conns != 0 {
				t.Errorf("node holds %d connections after a foreign handshake", st.Conns)
			}
		})
	}
}

// sameConn reports whether a and b are the two ends of one connection:
// their TLS exporters agree.
func sameConn(t *testing.T, a, b *Conn) bool {
	t.Helper()
	export := func(c *Conn) []byte {
		st := c.QUIC().ConnectionState().TLS
		k, err := st.ExportKeyingMaterial("shoal test", nil, 16)
		if err != nil {
			t.Fatalf("exporter: %v", err)
		}
		return k
	}
	return bytes.Equal(export(a), export(b))
}

// plainCert is an ordinary self-signed Ed25519 certificate without the
// shoal key URI.
func plainCert(t *testing.T) tls.Certificate {
	kp := mustKey(t)
	der := makeCert(t, kp.Signer().Public(), kp.Signer())
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: kp.Signer()}
}

func TestStreamWithoutTag(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newNode(t, Config{})
	b := newNode(t, Config{})
	c, err := a.Dial(ctx, b.PeerID(), b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.QUIC().OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // FIN before any tag byte
	_, err = io.ReadAll(s)
	var se *quic.StreamError
	if !errors.As(err, &se) || se.ErrorCode != StreamCodeNoTag {
		t.Errorf("reading a stream that sent no tag: %v, want stream error %#x", err, StreamCodeNoTag)
	}
}

func TestDuplicateRetirement(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const grace = 200 * time.Millisecond
	a := newNode(t, Config{DuplicateGrace: grace, KeepAlive: 50 * time.Millisecond})
	b := newNode(t, Config{DuplicateGrace: grace, KeepAlive: 50 * time.Millisecond})
	c1, err := a.Dial(ctx, b.PeerID(), b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	// A dial to an unnamed peer does not reuse: a second connection.
	c2, err := a.Dial(ctx, identity.PeerID{}, b.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Conn(b.PeerID()); got != c2 {
		t.Fatalf("best connection is not the newest of two equals")
	}
	// The newest dies before the grace ends: the older one must be kept
	// when its retire timer fires (the timer then disarms itself).
	c2.Close()
	testwait.Eventually(t, 10*time.Second, "the older connection's retire timer fires", func() error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if c1.retire != nil {
			return errors.New("the timer is still set")
		}
		return nil
	})
	if got := a.Conn(b.PeerID()); got != c1 || c1.Context().Err() != nil {
		t.Fatalf("the surviving connection was retired (got %v, err %v)", got, c1.Context().Err())
	}
	// A fresh duplicate retires the older one instead.
	if _, err := a.Dial(ctx, identity.PeerID{}, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 10*time.Second, "the older connection retires", func() error {
		if c1.Context().Err() == nil {
			return errors.New("it is still open")
		}
		return nil
	})
	var ae *quic.ApplicationError
	if cause := context.Cause(c1.Context()); !errors.As(cause, &ae) || ae.ErrorCode != CodeDuplicate {
		t.Errorf("older connection closed with %v, want application error %#x", cause, CodeDuplicate)
	}
	testwait.Eventually(t, 10*time.Second, "one connection per side", func() error { return conns(a, b) })
}
