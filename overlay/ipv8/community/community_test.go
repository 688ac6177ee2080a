package community

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
	"github.com/shoal-p2p/shoal/overlay/ipv8/discovery"
)

var testID = ipv8.MustCommunityID("5348f41c0a1d00000000000000000000000000aa")

// chat is py-ipv8's ChatPayload of ../shared/ipv8-app-vectors.md.
func chat(f ipv8.Framing) MessageType[string] {
	return MessageType[string]{
		ID:      42,
		Framing: f,
		Encode: func(b []byte, s *string) ([]byte, error) {
			return ipv8.NewFieldWriter(b).VarlenHUTF8(*s).Bytes()
		},
		Decode: func(p []byte) (string, error) {
			r := ipv8.NewFieldReader(p)
			s := r.VarlenHUTF8()
			return s, r.Done()
		},
	}
}

// echo is a request (43) and its answer (44): an identifier and a text.
type echo struct {
	ID   uint16
	Text string
}

func echoType(id byte) MessageType[echo] {
	return MessageType[echo]{
		ID:      id,
		Framing: ipv8.FramingSigned,
		Encode: func(b []byte, e *echo) ([]byte, error) {
			return ipv8.NewFieldWriter(b).Uint16(e.ID).VarlenHUTF8(e.Text).Bytes()
		},
		Decode: func(p []byte) (echo, error) {
			r := ipv8.NewFieldReader(p)
			e := echo{ID: r.Uint16(), Text: r.VarlenHUTF8()}
			return e, r.Done()
		},
	}
}

type member struct {
	addr netip.AddrPort
	kp   *identity.KeyPair
	ep   *ipv8.Endpoint
	c    *Community
	conn *net.UDPConn

	mu  sync.Mutex
	got []string
}

func (m *member) texts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.got...)
}

// start runs an endpoint on a loopback socket and a community with the
// chat message and an echo service on it, until the test ends.
func start(t *testing.T, boot []netip.AddrPort) *member {
	t.Helper()
	return startWith(t, boot, ipv8.Config{})
}

// startWith is start with an endpoint configuration (its Key is set).
func startWith(t *testing.T, boot []netip.AddrPort, epCfg ipv8.Config) *member {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := identity.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	epCfg.Key = kp
	ep, err := ipv8.NewEndpoint(conn, epCfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(ep, Config{ID: testID, Walk: discovery.Config{
		Bootstrap: boot, WalkInterval: 50 * time.Millisecond, BootstrapInterval: 200 * time.Millisecond,
	}})
	if err != nil {
		t.Fatal(err)
	}
	m := &member{addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), kp: kp, ep: ep, c: c, conn: conn}
	if err := Handle(c, chat(ipv8.FramingSignedNoTime), func(_ Sender, s string) {
		m.mu.Lock()
		m.got = append(m.got, s)
		m.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := Handle(c, echoType(43), func(from Sender, e echo) {
		e.Text = "echo: " + e.Text
		_ = Send(c, from.Addr, echoType(44), e)
	}); err != nil {
		t.Fatal(err)
	}
	if err := Declare(c, echoType(44)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = ep.ServeConn(ctx, conn) })
	wg.Go(func() { _ = c.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		conn.Close()
	})
	testwait.Eventually(t, 20*time.Second, "Run registers the community", func() error {
		if _, ok := ep.CommunityStats(testID); !ok {
			return errors.New("not registered")
		}
		return nil
	})
	return m
}

// TestCommunityEncodesPyIPv8Bytes: the chat message sent through the
// community API is byte for byte py-ipv8's golden datagram.
func TestCommunityEncodesPyIPv8Bytes(t *testing.T) {
	raw, _ := hex.DecodeString("4c69624e61434c534b3a6e87e70f5dd3bbd8796bca25cdb3da5d0a58dd8724ad0d5cb735f2ee9dbfe7099f55d42a430acb817947654f068228f2b8075a9090d233be0ad11309ce07b840")
	kp, err := identity.ParseSecretKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString("00025348f41c0a1d00000000000000000000000000aa2a004a4c69624e61434c504b3a10cf814d8ca3e9bd4015508813ae81c71d61eb4b51cc55f5adc8b0ba0ed3d223ad57a1f15cd6c7c43b42edbe669b9357d3b1a4d4c196ac588bc6c8613fe17d0f001268656c6c6f2066726f6d2070792d69707638e57551f4cca6694e4536c03d4ff305f1818c878be82c14d58ae56034ce19e54a7bc20aad59b659c7232a439f989be2d23f38dcb6e20cb2c8dc4a7f8fb66a9505")
	w := &capture{}
	ep, err := ipv8.NewEndpoint(w, ipv8.Config{Key: kp})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(ep, Config{ID: testID})
	if err != nil {
		t.Fatal(err)
	}
	if err := Declare(c, chat(ipv8.FramingSignedNoTime)); err != nil {
		t.Fatal(err)
	}
	if err := Send(c, netip.MustParseAddrPort("127.0.0.1:9"), chat(ipv8.FramingSignedNoTime), "hello from py-ipv8"); err != nil {
		t.Fatal(err)
	}
	if len(w.b) != 1 || !bytes.Equal(w.b[0], want) {
		t.Fatalf("sent\n%x\nwant py-ipv8's\n%x", w.b, want)
	}
}

type capture struct{ b [][]byte }

func (c *capture) WriteTo(b []byte, _ net.Addr) (int, error) {
	c.b = append(c.b, append([]byte(nil), b...))
	return len(b), nil
}

// TestTwoMembersChatAndRequest: two members find each other through the
// walk (one bootstraps from the other, which then is its peer), chat by
// broadcast, and a request gets its answer.
func TestTwoMembersChatAndRequest(t *testing.T) {
	leakcheck.Check(t)
	a := start(t, nil)
	b := start(t, []netip.AddrPort{a.addr})
	testwait.Eventually(t, 20*time.Second, "each lists the other", func() error {
		if len(a.c.Peers()) != 1 || len(b.c.Peers()) != 1 {
			return fmt.Errorf("a has %d peers, b %d", len(a.c.Peers()), len(b.c.Peers()))
		}
		return nil
	})
	if p := b.c.Peers()[0]; p.Addr != a.addr || !p.Bootstrap || p.Key != a.kp.Public() {
		t.Fatalf("b's peer %+v, want a as a bootstrap peer", p)
	}
	if n, err := Broadcast(b.c, chat(ipv8.FramingSignedNoTime), "hi a"); n != 1 || err != nil {
		t.Fatalf("broadcast: %d sent, %v", n, err)
	}
	if n, err := Broadcast(a.c, chat(ipv8.FramingSignedNoTime), "hi b"); n != 1 || err != nil {
		t.Fatalf("broadcast: %d sent, %v", n, err)
	}
	testwait.Eventually(t, 20*time.Second, "both messages arrive", func() error {
		if ga, gb := a.texts(), b.texts(); len(ga) != 1 || ga[0] != "hi a" || len(gb) != 1 || gb[0] != "hi b" {
			return fmt.Errorf("a got %q, b got %q", ga, gb)
		}
		return nil
	})
	got, from, err := Request(context.Background(), a.c, b.addr, echoType(43), echo{ID: 7, Text: "ping"}, echoType(44),
		func(e echo) bool { return e.ID == 7 })
	if err != nil || got.Text != "echo: ping" || from.Key != b.kp.Public() || from.GlobalTime == 0 {
		t.Fatalf("request: %+v from %+v, %v", got, from, err)
	}
	// A request nobody answers ends at its timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err = Request(ctx, a.c, b.addr, echoType(43), echo{ID: 8, Text: "x"}, echoType(44), func(e echo) bool { return e.ID == 9 })
	if !errors.Is(err, ipv8.ErrRequestCancelled) {
		t.Fatalf("unanswerable request: %v, want ErrRequestCancelled", err)
	}
	if s := a.c.Stats(); s.Answered != 1 || s.Handled < 1 || s.Peers != 1 || s.Sent == 0 {
		t.Errorf("a's stats %+v", s)
	}
}

// TestHostileMessagesDroppedAndCounted: an attacker on a real socket
// sends a bad signature, a wrong community, an unknown message ID, a
// truncated field and trailing bytes; each is dropped and counted in
// the right place, and an honest message still arrives.
func TestHostileMessagesDroppedAndCounted(t *testing.T) {
	leakcheck.Check(t)
	victim := start(t, nil)
	attacker, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	kp, _ := identity.Generate(nil)
	send := func(b []byte) {
		t.Helper()
		if _, err := attacker.WriteToUDPAddrPort(b, victim.addr); err != nil {
			t.Fatal(err)
		}
	}
	text := func(s string) []byte { p, _ := ipv8.NewFieldWriter(nil).VarlenHUTF8(s).Bytes(); return p }
	good := ipv8.AppendFramed(nil, kp, testID, 42, ipv8.FramingSignedNoTime, 0, text("hello"))

	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	send(bad)                                                                                          // bad signature
	send(ipv8.AppendFramed(nil, kp, ipv8.CommunityID{9}, 42, ipv8.FramingSignedNoTime, 0, text("x")))  // wrong community
	send(ipv8.AppendFramed(nil, kp, testID, 77, ipv8.FramingSignedNoTime, 0, text("x")))               // unknown message
	send(ipv8.AppendFramed(nil, kp, testID, 42, ipv8.FramingSignedNoTime, 0, text("hello")[:4]))       // truncated field
	send(ipv8.AppendFramed(nil, kp, testID, 42, ipv8.FramingSignedNoTime, 0, append(text("x"), 0xff))) // trailing byte
	send(good)

	testwait.Eventually(t, 20*time.Second, "the honest message arrives and every attack is counted", func() error {
		s := victim.c.Stats()
		es := victim.ep.Stats()
		switch {
		case len(victim.texts()) != 1 || victim.texts()[0] != "hello":
			return fmt.Errorf("delivered %q", victim.texts())
		case s.DroppedBadSignature != 1:
			return fmt.Errorf("bad signatures %d", s.DroppedBadSignature)
		case es.DroppedUnknownCommunity != 1:
			return fmt.Errorf("wrong community %d", es.DroppedUnknownCommunity)
		case s.DroppedUnknownMessage != 1:
			return fmt.Errorf("unknown message %d", s.DroppedUnknownMessage)
		case s.DroppedUndecodable != 2:
			return fmt.Errorf("undecodable %d", s.DroppedUndecodable)
		}
		return nil
	})
}

// TestDeclareRules: walk messages, duplicates and late declarations are
// refused.
func TestDeclareRules(t *testing.T) {
	ep, _ := ipv8.NewEndpoint(&capture{}, ipv8.Config{Key: func() *identity.KeyPair { k, _ := identity.Generate(nil); return k }()})
	c, err := New(ep, Config{ID: testID})
	if err != nil {
		t.Fatal(err)
	}
	walk := chat(ipv8.FramingSigned)
	walk.ID = ipv8.MsgIntroRequest
	if err := Declare(c, walk); !errors.Is(err, ErrWalkMessage) {
		t.Errorf("declaring the walk's message 234: %v", err)
	}
	if err := Declare(c, chat(ipv8.FramingSigned)); err != nil {
		t.Fatal(err)
	}
	if err := Declare(c, chat(ipv8.FramingSignedNoTime)); !errors.Is(err, ErrDeclared) {
		t.Errorf("declaring 42 twice: %v", err)
	}
	if err := Send(c, netip.MustParseAddrPort("127.0.0.1:9"), chat(ipv8.FramingSignedNoTime), "x"); !errors.Is(err, ErrWrongFraming) {
		t.Errorf("sending 42 in another framing: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	testwait.Eventually(t, 20*time.Second, "Run registers", func() error {
		if _, ok := ep.CommunityStats(testID); !ok {
			return errors.New("not registered")
		}
		return nil
	})
	other := chat(ipv8.FramingSigned)
	other.ID = 50
	if err := Declare(c, other); !errors.Is(err, ErrStarted) {
		t.Errorf("declaring after Run: %v", err)
	}
	cancel()
	<-done
}

// TestQueueBound: while the handler is stuck, received messages past
// QueueSize are dropped and counted, not held.
func TestQueueBound(t *testing.T) {
	leakcheck.Check(t)
	kp, _ := identity.Generate(nil)
	ep, _ := ipv8.NewEndpoint(&capture{}, ipv8.Config{Key: kp, RatePerSecond: 1e6})
	c, err := New(ep, Config{ID: testID, QueueSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	if err := Handle(c, chat(ipv8.FramingUnsignedNoTime), func(Sender, string) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	p, _ := ipv8.NewFieldWriter(nil).VarlenHUTF8("x").Bytes()
	dgram := ipv8.AppendFramed(nil, nil, testID, 42, ipv8.FramingUnsignedNoTime, 0, p)
	from := netip.MustParseAddrPort("127.0.0.1:9")
	testwait.Eventually(t, 20*time.Second, "Run registers", func() error {
		if _, ok := ep.CommunityStats(testID); !ok {
			return errors.New("not registered")
		}
		return nil
	})
	ep.HandlePacket(from, dgram)
	<-entered // the handler holds the first message
	for range 100 {
		ep.HandlePacket(from, dgram)
	}
	if s := c.Stats(); s.DroppedQueueFull != 100-8 || s.Delivered != 101 {
		t.Errorf("with a stuck handler and a queue of 8: %d dropped, %d delivered; want 92 and 101", s.DroppedQueueFull, s.Delivered)
	}
	close(release)
	testwait.Eventually(t, 20*time.Second, "the queued messages are handled", func() error {
		if h := c.Stats().Handled; h != 9 {
			return fmt.Errorf("%d handled, want 9", h)
		}
		return nil
	})
	cancel()
	<-done
}

// TestSharedWalk: an application adds its message to a community whose
// walk another part runs (here py-ipv8's discovery community): both
// register under one ID, the walk finds the peer, the message arrives.
func TestSharedWalk(t *testing.T) {
	leakcheck.Check(t)
	type side struct {
		addr netip.AddrPort
		walk *discovery.Community
		app  *Community
		got  chan string
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	mk := func(boot []netip.AddrPort) *side {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		kp, _ := identity.Generate(nil)
		ep, _ := ipv8.NewEndpoint(conn, ipv8.Config{Key: kp})
		// BootstrapInterval: b asks a again soon if its first request
		// beat a's registration (the default, 30 s, outlasts the wait).
		w, err := discovery.New(ep, discovery.Config{Bootstrap: boot, WalkInterval: 50 * time.Millisecond, BootstrapInterval: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		app, err := New(ep, Config{ID: discovery.CommunityID, SharedWalk: w})
		if err != nil {
			t.Fatal(err)
		}
		s := &side{addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), walk: w, app: app, got: make(chan string, 10)}
		if err := Handle(app, chat(ipv8.FramingSignedNoTime), func(_ Sender, v string) { s.got <- v }); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = ep.ServeConn(ctx, conn) })
		wg.Go(func() { _ = w.Run(ctx) })
		wg.Go(func() { _ = app.Run(ctx) })
		return s
	}
	a := mk(nil)
	b := mk([]netip.AddrPort{a.addr})
	testwait.Eventually(t, 20*time.Second, "b's app sees a through the shared walk", func() error {
		if n, _ := Broadcast(b.app, chat(ipv8.FramingSignedNoTime), "over discovery"); n == 0 {
			return errors.New("no peers yet")
		}
		return nil
	})
	if got := <-a.got; got != "over discovery" {
		t.Fatalf("a got %q", got)
	}
	// a's walk publishes its counters after sending the answer that let b
	// find it, so the count may trail the message.
	testwait.Eventually(t, 10*time.Second, "a's walk counts the requests it answered beside the app", func() error {
		if s := a.walk.Stats(); s.IntroRequestsAnswered == 0 {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
}

// TestFloodRateLimited: an attacker floods an application community
// from one address through a real socket with valid signed messages;
// past the endpoint's per-source burst (40 here, so that the flood beats
// it even when verification is slow) its datagrams are dropped and
// counted for that community, and an honest member's message arrives.
func TestFloodRateLimited(t *testing.T) {
	leakcheck.Check(t)
	victim := startWith(t, nil, ipv8.Config{RatePerSecond: 20, RateBurst: 40})
	honest := start(t, nil)
	attacker, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	p, _ := ipv8.NewFieldWriter(nil).VarlenHUTF8("flood").Bytes()
	kp, _ := identity.Generate(nil)
	dgram := ipv8.AppendFramed(nil, kp, testID, 42, ipv8.FramingSignedNoTime, 0, p) // valid: a replay is accepted
	start := time.Now()
	for range 3000 {
		if _, err := attacker.WriteToUDPAddrPort(dgram, victim.addr); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Eventually(t, 20*time.Second, "the flood is rate limited", func() error {
		if s := victim.c.Stats(); s.DroppedRateLimited == 0 {
			return fmt.Errorf("nothing rate limited yet: %+v", s.CommunityStats)
		}
		return nil
	})
	// The honest member resends until it gets through: while the flood
	// still fills the victim's socket buffer, the kernel drops its datagram
	// as it drops any.
	testwait.Eventually(t, 20*time.Second, "the honest message arrives", func() error {
		for _, s := range victim.texts() {
			if s == "honest" {
				return nil
			}
		}
		if err := Send(honest.c, victim.addr, chat(ipv8.FramingSignedNoTime), "honest"); err != nil {
			t.Fatal(err)
		}
		return fmt.Errorf("not yet: %+v", victim.c.Stats().CommunityStats)
	})
	// One source gets its burst (40) plus 20 a second, whatever it sends;
	// the honest member has its own bucket.
	s := victim.c.Stats()
	if limit := 40 + 20*time.Since(start).Seconds() + 2; float64(s.Delivered) > limit {
		t.Errorf("%d delivered, above one source's burst and rate (%.0f)", s.Delivered, limit)
	}
}
