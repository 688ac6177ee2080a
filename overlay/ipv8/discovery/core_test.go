package discovery

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

var t0 = time.Unix(1_700_000_000, 0)

type tnode struct {
	addr netip.AddrPort
	key  identity.PublicKey
	core *Core
}

func newTNode(t *testing.T, addr string, cfg Config) *tnode {
	t.Helper()
	sk := []byte("LibNaCLSK:")
	for i := range 64 {
		sk = append(sk, byte(len(addr)*31+int(addr[len(addr)-6])+i))
	}
	kp, err := identity.ParseSecretKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort(addr)
	cfg.LANAddress = a
	c, err := NewCore(kp.Public(), cfg, rand.New(rand.NewPCG(uint64(a.Port()), 9)))
	if err != nil {
		t.Fatal(err)
	}
	return &tnode{addr: a, key: kp.Public(), core: c}
}

// output is what one core call asked for, split by kind.
type output struct {
	Sends    []Send
	Events   []Event
	Deadline time.Time
}

// take drains c's pending actions.
func take(c *Core) output {
	actions, next := c.Ready(nil)
	out := output{Deadline: next}
	for _, a := range actions {
		switch a.Kind {
		case ActionSend:
			out.Sends = append(out.Sends, a.Send)
		case ActionEvent:
			out.Events = append(out.Events, a.Event)
		}
	}
	return out
}

func tick(c *Core, now time.Time) output { c.Tick(now); return take(c) }

func walkTo(c *Core, now time.Time, addr netip.AddrPort) output {
	c.WalkTo(now, addr)
	return take(c)
}

func handle(c *Core, now time.Time, m *ipv8.Message) output { c.Handle(now, m); return take(c) }

func sends(out output) []Send { return out.Sends }

// deliver hands s, sent by from, to to and returns to's sends.
func deliver(t *testing.T, now time.Time, from *tnode, s Send, to *tnode) []Send {
	t.Helper()
	if s.To != to.addr {
		t.Fatalf("send to %s delivered to %s", s.To, to.addr)
	}
	m := &ipv8.Message{From: from.addr, Community: CommunityID, ID: s.MsgID, Signed: !s.Unsigned, Payload: s.Payload}
	if m.Signed {
		m.Key = from.key
	}
	return sends(handle(to.core, now, m))
}

func only(t *testing.T, ss []Send, what string) Send {
	t.Helper()
	if len(ss) != 1 {
		t.Fatalf("%s: %d sends, want 1: %+v", what, len(ss), ss)
	}
	return ss[0]
}

func TestStyleNegotiation(t *testing.T) {
	a := newTNode(t, "10.0.0.1:7000", Config{})
	b := newTNode(t, "10.0.0.2:7000", Config{})
	req := only(t, sends(walkTo(a.core, t0, b.addr)), "first request")
	if req.MsgID != ipv8.MsgIntroRequestOld {
		t.Fatalf("first request to an unknown IPv4 peer is message %d, want old form 246", req.MsgID)
	}
	r, err := ipv8.DecodeIntroRequest(req.MsgID, req.Payload)
	if err != nil || !r.SupportsNewStyle {
		t.Fatalf("old request %+v (err %v) does not announce new-style support", r, err)
	}
	resp := only(t, deliver(t, t0, a, req, b), "response")
	if resp.MsgID != ipv8.MsgIntroResponse {
		t.Fatalf("response to a new-style-capable requester is message %d, want 233", resp.MsgID)
	}
	if out := deliver(t, t0, b, resp, a); len(out) != 0 {
		t.Fatalf("a answered the response: %+v", out)
	}
	peers := a.core.Peers()
	if len(peers) != 1 || peers[0].Addr != b.addr || !peers[0].NewStyle {
		t.Fatalf("a's table = %+v, want b marked new-style", peers)
	}
	out := sends(tick(a.core, t0.Add(time.Second)))
	next := only(t, out, "walk to b")
	if next.MsgID != ipv8.MsgIntroRequest {
		t.Errorf("request to a new-style peer is message %d, want 234", next.MsgID)
	}

	// A py-ipv8 node that does not yet say it supports the new form gets
	// old-form answers.
	old := ipv8.IntroRequest{Destination: b.addr, SourceLAN: a.addr, SourceWAN: a.addr, Identifier: 7}
	p, _ := old.Append(nil)
	c := newTNode(t, "10.0.0.3:7000", Config{})
	out = deliver(t, t0, c, Send{To: b.addr, MsgID: old.MsgID(), Payload: p}, b)
	if len(out) != 2 || out[0].To != c.addr || out[1].To != a.addr {
		t.Fatalf("b's answer to c: %+v; want a response to c and a puncture request to a", out)
	}
	resp = out[0]
	if resp.MsgID != ipv8.MsgIntroResponseOld {
		t.Errorf("response to an old-only requester is message %d, want 245", resp.MsgID)
	}
	rr, err := ipv8.DecodeIntroResponse(resp.MsgID, resp.Payload)
	if err != nil || !rr.SupportsNewStyle || rr.Identifier != 7 {
		t.Errorf("old response %+v (err %v): want supports-new-style set and identifier 7 echoed", rr, err)
	}
}

func TestPeerLimit(t *testing.T) {
	b := newTNode(t, "10.0.0.2:7000", Config{TargetPeers: 2, MaxPeers: 2})
	var others []*tnode
	for _, addr := range []string{"10.0.0.3:7000", "10.0.0.4:7000", "10.0.0.5:7000"} {
		n := newTNode(t, addr, Config{})
		others = append(others, n)
		req := only(t, sends(walkTo(n.core, t0, b.addr)), "request")
		out := deliver(t, t0, n, req, b)
		var resp Send
		for _, s := range out {
			if s.To == n.addr {
				resp = s
			}
		}
		r, err := ipv8.DecodeIntroResponse(resp.MsgID, resp.Payload)
		if err != nil {
			t.Fatalf("%s: response: %v", addr, err)
		}
		wantFull := len(others) == 3
		if r.PeerLimitReached != wantFull {
			t.Errorf("request %d: peer-limit flag %v, want %v", len(others), r.PeerLimitReached, wantFull)
		}
		deliver(t, t0, b, resp, n)
		_, added := n.core.peers[b.addr]
		if added == wantFull {
			t.Errorf("request %d: requester added the responder: %v, want %v", len(others), added, !wantFull)
		}
	}
	if got := b.core.NumPeers(); got != 2 {
		t.Errorf("b has %d peers, max 2", got)
	}
	if got := b.core.Stats().IntroRequestsRefused; got != 1 {
		t.Errorf("IntroRequestsRefused = %d, want 1", got)
	}
}

func TestIntroductionAndPuncture(t *testing.T) {
	a := newTNode(t, "10.0.0.1:7000", Config{})
	b := newTNode(t, "10.0.0.2:7000", Config{})
	c := newTNode(t, "10.0.0.3:7000", Config{})
	// c becomes b's peer.
	req := only(t, sends(walkTo(c.core, t0, b.addr)), "c to b")
	deliver(t, t0, b, only(t, deliver(t, t0, c, req, b), "b to c"), c)

	// a asks b; b introduces c and asks c to puncture towards a.
	req = only(t, sends(walkTo(a.core, t0, b.addr)), "a to b")
	out := deliver(t, t0, a, req, b)
	if len(out) != 2 {
		t.Fatalf("b sent %d datagrams, want a response and a puncture request: %+v", len(out), out)
	}
	resp, preq := out[0], out[1]
	if resp.To != a.addr || preq.To != c.addr || !preq.Unsigned {
		t.Fatalf("b sent %+v then %+v; want the response to a and an unsigned puncture request to c", resp, preq)
	}
	rr, _ := ipv8.DecodeIntroResponse(resp.MsgID, resp.Payload)
	if rr.IntroWAN != c.addr || rr.IntroLAN != c.addr {
		t.Errorf("introduced %s / %s, want c at %s", rr.IntroLAN, rr.IntroWAN, c.addr)
	}
	pr, _ := ipv8.DecodePunctureRequest(preq.MsgID, preq.Payload)
	if pr.WANWalker != a.addr || pr.LANWalker != a.addr {
		t.Errorf("puncture request names %s / %s, want a at %s", pr.LANWalker, pr.WANWalker, a.addr)
	}
	deliver(t, t0, b, resp, a)
	if _, ok := a.core.walkable[c.addr]; !ok {
		t.Errorf("a did not note the introduced c as walkable: %v", a.core.walkable)
	}
	punct := only(t, deliver(t, t0, b, preq, c), "c's puncture")
	if punct.To != a.addr || punct.Unsigned {
		t.Fatalf("c's puncture %+v: want a signed datagram to a", punct)
	}
	if out := deliver(t, t0, c, punct, a); len(out) != 0 {
		t.Errorf("a answered a puncture: %+v", out)
	}
	if got := a.core.Stats().PuncturesReceived; got != 1 {
		t.Errorf("PuncturesReceived = %d, want 1", got)
	}

	// A stranger cannot aim c's punctures.
	stranger := newTNode(t, "10.0.0.9:7000", Config{})
	if out := deliver(t, t0, stranger, Send{To: c.addr, MsgID: preq.MsgID, Unsigned: true, Payload: preq.Payload}, c); len(out) != 0 {
		t.Errorf("c punctured on a stranger's request: %+v", out)
	}
	if got := c.core.Stats().PunctureRequestsIgnored; got != 1 {
		t.Errorf("PunctureRequestsIgnored = %d, want 1", got)
	}
}

func TestResponsesMustMatch(t *testing.T) {
	a := newTNode(t, "10.0.0.1:7000", Config{})
	b := newTNode(t, "10.0.0.2:7000", Config{})
	req := only(t, sends(walkTo(a.core, t0, b.addr)), "request")
	resp := only(t, deliver(t, t0, a, req, b), "response")
	// The same response from another address is unsolicited.
	other := newTNode(t, "10.0.0.3:7000", Config{})
	m := &ipv8.Message{From: other.addr, Community: CommunityID, ID: resp.MsgID, Signed: true, Key: other.key, Payload: resp.Payload}
	handle(a.core, t0, m)
	if a.core.NumPeers() != 0 || a.core.Stats().Unsolicited != 1 {
		t.Fatalf("response from the wrong address: %d peers, %d unsolicited; want 0 and 1", a.core.NumPeers(), a.core.Stats().Unsolicited)
	}
	deliver(t, t0, b, resp, a)
	if a.core.NumPeers() != 1 {
		t.Fatalf("matching response: %d peers, want 1", a.core.NumPeers())
	}
	// A replay is unsolicited too.
	deliver(t, t0, b, resp, a)
	if got := a.core.Stats().Unsolicited; got != 2 {
		t.Errorf("replayed response: Unsolicited = %d, want 2", got)
	}
	// After IntroTimeout a pending request is forgotten.
	req = only(t, sends(walkTo(a.core, t0, b.addr)), "second request")
	resp = only(t, deliver(t, t0, a, req, b), "second response")
	tick(a.core, t0.Add(DefaultIntroTimeout))
	deliver(t, t0.Add(DefaultIntroTimeout), b, resp, a)
	if s := a.core.Stats(); s.IntroTimeouts != 1 || s.Unsolicited != 3 {
		t.Errorf("late response: %d timeouts, %d unsolicited; want 1 and 3", s.IntroTimeouts, s.Unsolicited)
	}
}

func TestWANLearning(t *testing.T) {
	// a's interfaces: 10.0.0.0/24 and loopback.
	ours := func(a netip.Addr) bool {
		return netip.MustParsePrefix("10.0.0.0/24").Contains(a) || a.IsLoopback()
	}
	tests := []struct {
		name, dest string
		lanSubnet  func(netip.Addr) bool
		learn      bool
	}{
		{"public", "203.0.113.7:4000", nil, true},
		{"private", "192.168.1.7:4000", nil, false},
		{"loopback", "127.0.0.1:4000", nil, false},
		{"zero", "0.0.0.0:0", nil, false},
		{"private outside our subnets", "192.168.1.7:4000", ours, true},
		{"inside our subnet", "10.0.0.9:4000", ours, false},
		{"loopback, our interface", "127.0.0.1:4000", ours, false},
		{"public with subnets", "203.0.113.7:4000", ours, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newTNode(t, "10.0.0.1:7000", Config{InLANSubnet: tc.lanSubnet})
			b := newTNode(t, "198.51.100.2:7000", Config{})
			req := only(t, sends(walkTo(a.core, t0, b.addr)), "request")
			r, _ := ipv8.DecodeIntroRequest(req.MsgID, req.Payload)
			resp := ipv8.IntroResponse{NewStyle: true, Destination: netip.MustParseAddrPort(tc.dest), Identifier: r.Identifier}
			p, _ := resp.Append(nil)
			deliver(t, t0, b, Send{To: a.addr, MsgID: resp.MsgID(), Payload: p}, a)
			_, wan := a.core.Addresses()
			if got := wan.String() == tc.dest; got != tc.learn {
				t.Errorf("WAN address %s after a response naming %s; learned %v, want %v", wan, tc.dest, got, tc.learn)
			}
		})
	}
}

func TestBootstrap(t *testing.T) {
	b := newTNode(t, "10.0.0.2:7000", Config{})
	cfg := Config{Bootstrap: []netip.AddrPort{b.addr}}
	a := newTNode(t, "10.0.0.1:7000", cfg)
	req := only(t, sends(tick(a.core, t0)), "first tick")
	if req.To != b.addr {
		t.Fatalf("first tick sent to %s, want the bootstrap node %s", req.To, b.addr)
	}
	deliver(t, t0, b, only(t, deliver(t, t0, a, req, b), "response"), a)
	// A bootstrap node that answers as a full peer is listed (and so
	// introduced and churned) but flagged: the walk does not depend on it.
	peers := a.core.Peers()
	if len(peers) != 1 || peers[0].Addr != b.addr || !peers[0].Bootstrap {
		t.Fatalf("after the bootstrap node answered: peers %+v, want it listed as a bootstrap peer", peers)
	}
	if bp := b.core.Peers(); len(bp) != 1 || bp[0].Addr != a.addr || bp[0].Bootstrap {
		t.Fatalf("the bootstrap node's peers: %+v, want a as an ordinary peer", bp)
	}
	// No other peer: no new request before BootstrapInterval (pings of
	// the idle bootstrap peer aside); the bootstrap peer is not walked to.
	for d := time.Second; d < DefaultBootstrapInterval; d += time.Second {
		for _, s := range tick(a.core, t0.Add(d)).Sends {
			if s.MsgID != ipv8.MsgPing {
				t.Fatalf("tick at +%v sent %+v before the bootstrap interval", d, s)
			}
		}
	}
	if out := tick(a.core, t0.Add(DefaultBootstrapInterval)); len(out.Sends) != 1 || out.Sends[0].To != b.addr {
		t.Errorf("tick at +30s sent %+v, want one request to the bootstrap node", out.Sends)
	}
}

// TestLANAddressInRequests: the LAN address in an introduction request
// is the socket's; for a wildcard bind, the interface address reaching
// the peer; the WAN address defaults to the LAN address.
func TestLANAddressInRequests(t *testing.T) {
	dst := netip.MustParseAddrPort("10.1.2.3:7000")
	tests := []struct {
		name     string
		lan      string
		localFor func(netip.Addr) netip.Addr
		want     string
	}{
		{"bound address", "192.168.5.5:6000", nil, "192.168.5.5:6000"},
		{"wildcard", "0.0.0.0:6000", func(netip.Addr) netip.Addr { return netip.MustParseAddr("10.1.2.9") }, "10.1.2.9:6000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kp, _ := identity.ParseSecretKey(append([]byte("LibNaCLSK:"), make([]byte, 64)...))
			c, err := NewCore(kp.Public(), Config{LANAddress: netip.MustParseAddrPort(tc.lan), LocalAddrFor: tc.localFor}, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			req := only(t, sends(walkTo(c, t0, dst)), "request")
			r, err := ipv8.DecodeIntroRequest(req.MsgID, req.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if r.SourceLAN.String() != tc.want || r.SourceWAN.String() != tc.want {
				t.Errorf("request announces LAN %s WAN %s, want %s for both", r.SourceLAN, r.SourceWAN, tc.want)
			}
		})
	}
}

func TestChurn(t *testing.T) {
	a := newTNode(t, "10.0.0.1:7000", Config{TargetPeers: 1})
	b := newTNode(t, "10.0.0.2:7000", Config{})
	req := only(t, sends(walkTo(a.core, t0, b.addr)), "request")
	deliver(t, t0, b, only(t, deliver(t, t0, a, req, b), "response"), a)
	if a.core.NumPeers() != 1 {
		t.Fatal("b not added")
	}
	if out := tick(a.core, t0.Add(DefaultPingAfter-DefaultWalkInterval)); len(out.Sends) != 0 {
		t.Fatalf("sent %+v before b was idle", out.Sends)
	}
	ping := only(t, sends(tick(a.core, t0.Add(DefaultPingAfter))), "ping")
	if ping.MsgID != ipv8.MsgPing || !ping.Unsigned {
		t.Fatalf("idle peer got %+v, want an unsigned ping", ping)
	}
	pong := only(t, deliver(t, t0.Add(DefaultPingAfter), a, ping, b), "pong")
	deliver(t, t0.Add(DefaultPingAfter+time.Second), b, pong, a)
	if p := a.core.Peers()[0]; !p.LastSeen.Equal(t0.Add(DefaultPingAfter + time.Second)) {
		t.Errorf("pong did not refresh b: last seen %v", p.LastSeen.Sub(t0))
	}
	// Now b goes silent: dropped DropAfter after it was last seen.
	last := t0.Add(DefaultPingAfter + time.Second)
	var pings int
	for d := time.Duration(0); d < DefaultDropAfter; d += 500 * time.Millisecond {
		out := tick(a.core, last.Add(d))
		pings += len(out.Sends)
		if len(out.Events) != 0 {
			t.Fatalf("b dropped after %v, before DropAfter", d)
		}
	}
	if pings < 2 || pings > 4 {
		t.Errorf("b was pinged %d times while silent, want 2 to 4", pings)
	}
	out := tick(a.core, last.Add(DefaultDropAfter))
	if len(out.Events) != 1 || out.Events[0].Kind != PeerRemoved || out.Events[0].Peer.Addr != b.addr {
		t.Fatalf("at DropAfter: events %+v, want b removed", out.Events)
	}
	if a.core.NumPeers() != 0 {
		t.Errorf("b still in the table")
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.populate()
	if err != nil {
		t.Fatal(err)
	}
	if c.TargetPeers != 20 || c.MaxPeers != 30 || c.WalkInterval != 500*time.Millisecond ||
		c.IntroTimeout != 3*time.Second || c.PingAfter != 27500*time.Millisecond ||
		c.DropAfter != 57500*time.Millisecond || c.BootstrapInterval != 30*time.Second || c.Community != CommunityID {
		t.Errorf("defaults = %+v", c)
	}
	if _, err := (Config{PingAfter: time.Second, DropAfter: time.Second}).populate(); err == nil {
		t.Errorf("DropAfter <= PingAfter accepted")
	}
}
