package relay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/relay"
)

// tap records every packet its socket receives (what the relay host sees
// on the wire).
type tap struct {
	net.PacketConn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tap) ReadFrom(p []byte) (int, net.Addr, error) {
	n, a, err := t.PacketConn.ReadFrom(p)
	if n > 0 {
		t.mu.Lock()
		t.buf.Write(p[:n])
		t.mu.Unlock()
	}
	return n, a, err
}

func (t *tap) seen() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf.Bytes())
}

type peer struct {
	node *overlay.Node
	rc   *relay.Conn
	kp   *identity.KeyPair
	addr netip.AddrPort
	tap  *tap
}

func newPeer(t *testing.T, cfg relay.Config) *peer {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{PacketConn: udp}
	cfg.KeyPair = kp
	rc, err := relay.New(tp, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n, err := overlay.New(overlay.Config{PacketConn: rc, KeyPair: kp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		n.Close()
	})
	return &peer{node: n, rc: rc, kp: kp, addr: udp.LocalAddr().(*net.UDPAddr).AddrPort(), tap: tp}
}

// registered waits until c is registered with relay.
func registered(t *testing.T, c *relay.Conn, r netip.AddrPort) {
	t.Helper()
	if err := c.Register(r); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 10*time.Second, "registered with "+r.String(), func() error {
		if len(c.Relays()) == 0 {
			c.Maintain()
			return errors.New("no relay lists c")
		}
		return nil
	})
}

const echoTag = 9

// TestRelayedQUIC: two peers that only reach each other through a relay
// open a mutually authenticated QUIC connection over it and move 2 MiB;
// the relay forwards only ciphertext (no 32-byte piece of the plaintext
// appears in what its socket received) and holds no connection of its own
// to either peer.
func TestRelayedQUIC(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := newPeer(t, relay.Config{Serve: true})
	a, b := newPeer(t, relay.Config{}), newPeer(t, relay.Config{})
	payload := make([]byte, 2<<20)
	rand.Read(payload)
	b.node.Handle(echoTag, func(ctx context.Context, c *overlay.Conn, s *quic.Stream) {
		io.Copy(s, s)
	})
	registered(t, a.rc, r.addr)
	registered(t, b.rc, r.addr)
	v, err := a.rc.Connect(ctx, r.addr, b.kp.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	if !relay.IsVirtual(v) {
		t.Fatalf("Connect returned %s, not a virtual address", v)
	}
	// The wrong identity at the far end fails the handshake: the relay
	// cannot stand in for anyone.
	if _, err := a.node.Dial(ctx, r.kp.PeerID(), v); err == nil {
		t.Fatal("dialling the relayed route as the relay's identity succeeded")
	}
	c, err := a.node.Dial(ctx, b.kp.PeerID(), v)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.OpenStream(ctx, echoTag)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		s.Write(payload)
		s.Close()
	}()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo over the relay: %d bytes (%v), want %d equal", len(got), err, len(payload))
	}
	st := r.rc.Stats()
	if st.BytesForwarded < 2*uint64(len(payload)) || st.SessionsOpened != 1 {
		t.Fatalf("relay stats %+v: want at least %d bytes forwarded in 1 session", st, 2*len(payload))
	}
	seen := r.tap.seen()
	for off := 0; off+32 <= len(payload); off += 4093 {
		if bytes.Contains(seen, payload[off:off+32]) {
			t.Fatalf("the relay's socket received plaintext (offset %d)", off)
		}
	}
	if n := len(r.node.Conns()); n != 0 {
		t.Fatalf("the relay holds %d QUIC connections, want none (no session keys)", n)
	}
	if as := a.rc.Stats(); as.RelayedOut == 0 || as.RelayedIn == 0 {
		t.Fatalf("client stats %+v: nothing went through the relay", as)
	}
}

// TestRelayIsNoOpenProxy: the relay connects only registered peers that
// proved their key, forwards a session's frames only between its two
// members, and ends a session that spends its budget.
func TestRelayIsNoOpenProxy(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := newPeer(t, relay.Config{Serve: true, PairBudget: 64 << 10})
	a, b := newPeer(t, relay.Config{}), newPeer(t, relay.Config{})
	// a is not registered yet: refused.
	short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	_, err := a.rc.Connect(short, r.addr, b.kp.PeerID())
	cancelShort()
	if !errors.Is(err, relay.ErrRefused) {
		t.Fatalf("connect before registering: %v, want refused", err)
	}
	registered(t, a.rc, r.addr)
	// b is not registered: refused (the relay reaches no one who did not
	// sign up).
	if _, err := a.rc.Connect(ctx, r.addr, b.kp.PeerID()); !errors.Is(err, relay.ErrRefused) {
		t.Fatalf("connect to an unregistered peer: %v, want refused", err)
	}
	registered(t, b.rc, r.addr)
	v, err := a.rc.Connect(ctx, r.addr, b.kp.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	_ = v
	// A stranger that guesses or sniffs the session sends data: dropped.
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	before := r.rc.Stats()
	for sid := uint32(0); sid < 64; sid++ {
		f := relay.Frame{Type: relay.TypeData, Session: sid, Payload: []byte("let me through")}
		b, _ := f.Append(nil)
		stranger.WriteToUDPAddrPort(b, r.addr)
	}
	// A forged registration (bad cookie) is refused too.
	f := relay.Frame{Type: relay.TypeRegister, Key: b.kp.Public()}
	fb, _ := f.Append(nil)
	stranger.WriteToUDPAddrPort(fb, r.addr)
	waitStats(t, r.rc, "the stranger's frames dropped and its registration refused", func(s relay.Stats) bool {
		return s.Dropped >= before.Dropped+64 && s.BadRegistrations > before.BadRegistrations
	})
	if s := r.rc.Stats(); s.FramesForwarded != before.FramesForwarded {
		t.Fatalf("the relay forwarded a stranger's frames: %+v", s)
	}
	// The budget: 64 KiB, then the session ends.
	big := make([]byte, 1200)
	for range 80 {
		a.rc.WriteTo(big, net.UDPAddrFromAddrPort(v))
	}
	waitStats(t, r.rc, "the pair's budget ends it", func(s relay.Stats) bool { return s.BudgetEnded == 1 && s.Pairs == 0 })
}

// waitStats waits until c's counters satisfy ok; a failure shows them.
func waitStats(t *testing.T, c *relay.Conn, what string, ok func(relay.Stats) bool) {
	t.Helper()
	testwait.Eventually(t, 10*time.Second, what, func() error {
		if s := c.Stats(); !ok(s) {
			return fmt.Errorf("relay stats %+v", s)
		}
		return nil
	})
}
