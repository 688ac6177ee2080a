package ipv8

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

var testCommunity = CommunityID{0x5e, 0xa1}

// recorder is a test community: message 1 signed, 2 unsigned, 3 an echo
// service that answers with message 4 and the same payload.
type recorder struct {
	ep  *Endpoint
	mu  sync.Mutex
	got []Message
	ch  chan struct{}
}

func (r *recorder) Framing(id byte) Framing {
	switch id {
	case 1, 3, 4:
		return FramingSigned
	case 2:
		return FramingUnsigned
	}
	return FramingUnknown
}

func (r *recorder) HandleMessage(m *Message) {
	if m.ID == 3 {
		_ = r.ep.Send(m.From, m.Community, 4, m.Payload)
		return
	}
	cp := *m
	cp.Payload = append([]byte(nil), m.Payload...)
	r.mu.Lock()
	r.got = append(r.got, cp)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *recorder) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.got...)
}

type testNode struct {
	ep   *Endpoint
	conn *net.UDPConn
	addr netip.AddrPort
	rec  *recorder
}

// startNode runs an endpoint on a fresh loopback socket until the test
// ends, and waits for its goroutine.
func startNode(t *testing.T, cfg Config) *testNode {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Key == nil {
		if cfg.Key, err = identity.Generate(nil); err != nil {
			t.Fatal(err)
		}
	}
	ep, err := NewEndpoint(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{ep: ep, ch: make(chan struct{}, 1)}
	if err := ep.Register(testCommunity, rec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = ep.ServeConn(ctx, conn) })
	wg.Go(func() { _ = ep.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		conn.Close()
	})
	return &testNode{ep: ep, conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), rec: rec}
}

// statsMatch returns a condition for testwait: cond holds for n's stats.
func (n *testNode) statsMatch(cond func(Stats) bool) func() error {
	return func() error {
		if s := n.ep.Stats(); !cond(s) {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	}
}
func TestEndpointDeliversAndDrops(t *testing.T) {
	a, b := startNode(t, Config{}), startNode(t, Config{})
	if err := a.ep.Send(b.addr, testCommunity, 1, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := a.ep.SendUnsigned(b.addr, testCommunity, 2, []byte("plain")); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 10*time.Second, "two delivered", b.statsMatch(func(s Stats) bool { return s.Delivered == 2 }))
	msgs := b.rec.messages()
	if len(msgs) != 2 || string(msgs[0].Payload) != "hello" || !msgs[0].Signed || msgs[0].Key != a.ep.Public() || msgs[0].From != a.addr {
		t.Fatalf("first message = %+v, want signed \"hello\" from %s with a's key", msgs[0], a.addr)
	}
	if string(msgs[1].Payload) != "plain" || msgs[1].Signed {
		t.Fatalf("second message = %+v, want unsigned \"plain\"", msgs[1])
	}

	// Raw datagrams from a plain socket.
	raw, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	kp, _ := identity.Generate(nil)
	good := AppendSigned(nil, kp, testCommunity, 1, 5, []byte("x"))
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-10] ^= 0x01
	cases := []struct {
		name    string
		dg      []byte
		counter func(Stats) uint64
	}{
		{"flipped bit", flipped, func(s Stats) uint64 { return s.DroppedBadSignature }},
		{"garbage", []byte{0, 2, 0xff}, func(s Stats) uint64 { return s.DroppedMalformed }},
		{"QUIC-looking", []byte{0x40, 1, 2, 3}, func(s Stats) uint64 { return s.DroppedMalformed }},
		{"unknown community", AppendSigned(nil, kp, CommunityID{9}, 1, 5, nil), func(s Stats) uint64 { return s.DroppedUnknownCommunity }},
		{"unknown message", AppendSigned(nil, kp, testCommunity, 77, 5, nil), func(s Stats) uint64 { return s.DroppedUnknownMessage }},
		{"oversized", append(AppendUnsigned(nil, testCommunity, 2, 5, nil), make([]byte, MaxDatagramSize)...), func(s Stats) uint64 { return s.DroppedOversized }},
		{"signed message cut short", good[:100], func(s Stats) uint64 { return s.DroppedMalformed }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.counter(b.ep.Stats())
			delivered := b.ep.Stats().Delivered
			if _, err := raw.WriteTo(tc.dg, net.UDPAddrFromAddrPort(b.addr)); err != nil {
				t.Fatal(err)
			}
			testwait.Eventually(t, 10*time.Second, tc.name+" is counted", b.statsMatch(func(s Stats) bool { return tc.counter(s) == before+1 }))
			if d := b.ep.Stats().Delivered; d != delivered {
				t.Errorf("delivered went from %d to %d; the datagram should have been dropped", delivered, d)
			}
		})
	}
	s := b.ep.Stats()
	if s.Received != s.Delivered+s.Answered+s.Dropped() {
		t.Errorf("received %d != delivered %d + answered %d + dropped %d", s.Received, s.Delivered, s.Answered, s.Dropped())
	}
}

func TestSendRejectsOversized(t *testing.T) {
	a, b := startNode(t, Config{}), startNode(t, Config{})
	err := a.ep.Send(b.addr, testCommunity, 1, make([]byte, MaxDatagramSize-SignedOverhead+1))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Send of 1,401 bytes: error %v, want ErrTooLarge", err)
	}
	if err := a.ep.Send(b.addr, testCommunity, 1, make([]byte, MaxDatagramSize-SignedOverhead)); err != nil {
		t.Fatalf("Send of exactly 1,400 bytes: %v", err)
	}
	if got := a.ep.Stats().SendOversized; got != 1 {
		t.Errorf("SendOversized = %d, want 1", got)
	}
}

func TestLamportClock(t *testing.T) {
	a, b := startNode(t, Config{}), startNode(t, Config{})
	for range 3 {
		if err := a.ep.Send(b.addr, testCommunity, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.ep.GlobalTime(); got != 3 {
		t.Errorf("after 3 sends the clock is %d, want 3", got)
	}
	testwait.Eventually(t, 10*time.Second, "3 delivered", b.statsMatch(func(s Stats) bool { return s.Delivered == 3 }))
	if got := b.ep.GlobalTime(); got != 3 {
		t.Errorf("receiver's clock is %d, want raised to 3", got)
	}
	if err := b.ep.Send(a.addr, testCommunity, 1, nil); err != nil {
		t.Fatal(err)
	}
	if got := b.ep.GlobalTime(); got != 4 {
		t.Errorf("receiver's clock after one send is %d, want 4", got)
	}
	b.ep.observeTime(1 << 63)
	if got := b.ep.GlobalTime(); got != 4 {
		t.Errorf("clock took a hostile value: %d", got)
	}
}

func TestRequest(t *testing.T) {
	a, b := startNode(t, Config{}), startNode(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := a.ep.Request(ctx, b.addr, testCommunity, 3, []byte("ping-7"), func(m *Message) bool {
		return m.ID == 4 && string(m.Payload) == "ping-7"
	})
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	if string(m.Payload) != "ping-7" || m.Key != b.ep.Public() {
		t.Errorf("answer = %+v, want payload ping-7 signed by b", m)
	}
	if len(a.rec.messages()) != 0 {
		t.Errorf("the matched answer also reached the community handler")
	}

	// No answer: the context decides.
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	_, err = a.ep.Request(short, b.addr, testCommunity, 3, []byte("x"), func(*Message) bool { return false })
	if !errors.Is(err, ErrRequestCancelled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unanswered Request: error %v, want ErrRequestCancelled wrapping DeadlineExceeded", err)
	}
	a.ep.mu.Lock()
	n := len(a.ep.waiters)
	a.ep.mu.Unlock()
	if n != 0 {
		t.Errorf("%d waiters left after the requests ended", n)
	}
}

func TestRateLimit(t *testing.T) {
	a := startNode(t, Config{})
	b := startNode(t, Config{RatePerSecond: 1, RateBurst: 5})
	for range 20 {
		if err := a.ep.SendUnsigned(b.addr, testCommunity, 2, nil); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Eventually(t, 10*time.Second, "all 20 counted", b.statsMatch(func(s Stats) bool { return s.Received == 20 }))
	s := b.ep.Stats()
	if s.Delivered < 5 || s.Delivered > 6 || s.DroppedRateLimited != 20-s.Delivered {
		t.Errorf("delivered %d, rate limited %d; want 5 or 6 through a burst of 5 and the rest limited", s.Delivered, s.DroppedRateLimited)
	}
}

// TestHostRateLimit: one host flooding from many sockets, each within its
// own source budget, is held to its host's budget, while another host's
// datagrams all get through.
func TestHostRateLimit(t *testing.T) {
	b := startNode(t, Config{RatePerSecond: 1, RateBurst: 5, HostRatePerSecond: 1, HostRateBurst: 20})
	sender := func(ip net.IP) *Endpoint {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		key, err := identity.Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		ep, err := NewEndpoint(conn, Config{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return ep
	}
	for range 10 { // 10 sockets of 127.0.0.3, 5 datagrams each: each within its burst
		ep := sender(net.IPv4(127, 0, 0, 3))
		for range 5 {
			if err := ep.SendUnsigned(b.addr, testCommunity, 2, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	testwait.Eventually(t, 10*time.Second, "the flood's 50 counted", b.statsMatch(func(s Stats) bool { return s.Received == 50 }))
	if s := b.ep.Stats(); s.Delivered < 20 || s.Delivered > 21 || s.DroppedRateLimitedHost != 50-s.Delivered || s.DroppedRateLimited != s.DroppedRateLimitedHost {
		t.Errorf("one host on 10 ports: delivered %d, host limited %d, rate limited %d; want 20 or 21 through the host's burst of 20 and the rest limited by the host budget",
			s.Delivered, s.DroppedRateLimitedHost, s.DroppedRateLimited)
	}
	honest := sender(net.IPv4(127, 0, 0, 4))
	for range 5 {
		if err := honest.SendUnsigned(b.addr, testCommunity, 2, nil); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Eventually(t, 10*time.Second, "another host's 5 delivered", b.statsMatch(func(s Stats) bool { return s.Received == 55 }))
	if s := b.ep.Stats(); s.Delivered < 25 || s.DroppedRateLimited != 55-s.Delivered {
		t.Errorf("after another host's 5: delivered %d, rate limited %d; want all 5 delivered", s.Delivered, s.DroppedRateLimited)
	}
}

func TestRateTableBounded(t *testing.T) {
	rt := newRateTable(Config{RatePerSecond: 1, RateBurst: 2, HostRatePerSecond: 1, HostRateBurst: 2, RateTableSize: 8})
	now := time.Unix(1000, 0)
	for i := range 100 {
		rt.Allow(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 1), now)
	}
	if rt.Len() > 8 {
		t.Errorf("rate table holds %d sources, limit 8", rt.Len())
	}
	rt.Prune(now.Add(10 * time.Second))
	if rt.Len() != 0 {
		t.Errorf("after refill, prune left %d buckets", rt.Len())
	}
}

func TestRegisterTwice(t *testing.T) {
	n := startNode(t, Config{})
	if err := n.ep.Register(testCommunity, n.rec); !errors.Is(err, ErrCommunityTaken) {
		t.Errorf("second Register: error %v, want ErrCommunityTaken", err)
	}
	if _, err := NewEndpoint(n.conn, Config{}); err == nil {
		t.Errorf("NewEndpoint without a key succeeded")
	}
}
