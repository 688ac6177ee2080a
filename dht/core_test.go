package dht

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

type testPeer struct {
	t    *testing.T
	kp   Signer
	core *Core
	addr netip.AddrPort
	// silent: this peer does not answer the pings that verify its address
	// (deliver answers them on its behalf otherwise).
	silent bool
	txid   uint32 // last request ID this peer sent through deliver
}

func newTestPeer(t *testing.T, seed uint64, cfg Config) *testPeer {
	t.Helper()
	kp := testKeyPair(t, seed)
	c, err := NewCore(cfg, kp, rand.New(rand.NewPCG(seed, 77)), t0)
	if err != nil {
		t.Fatalf("NewCore: %v", err)
	}
	return &testPeer{t: t, kp: kp, core: c, addr: testAddr(int(seed))}
}

// testReady is a Core's output split by kind.
type testReady struct {
	Messages []Outgoing
	Events   []Event
	Next     time.Time
}

// readyOf drains c's actions.
func readyOf(c *Core) testReady {
	acts, next := c.Ready(nil)
	rd := testReady{Next: next}
	for _, a := range acts {
		switch a.Kind {
		case ActionSend:
			rd.Messages = append(rd.Messages, a.Send)
		case ActionEvent:
			rd.Events = append(rd.Events, a.Event)
		}
	}
	return rd
}

// deadlineOf returns c's next deadline; c must have no pending actions.
func deadlineOf(t *testing.T, c *Core) time.Time {
	t.Helper()
	acts, next := c.Ready(nil)
	if len(acts) > 0 {
		t.Fatalf("%d actions pending, want none", len(acts))
	}
	return next
}

// deliver hands m from `from` to p and returns p's decoded replies. A
// request gets a fresh transaction ID (a real sender never reuses one; p
// drops repeats as replays). Unless from is silent, deliver answers, as
// from, the ping p sends to verify from's address, and leaves it out.
func (p *testPeer) deliver(now time.Time, from *testPeer, m Message) []Message {
	p.t.Helper()
	if m.Type.isRequest() {
		from.txid++
		m.TxID = from.txid
	}
	p.core.HandleMessage(now, from.addr, from.kp.Public(), m.Append(nil))
	var out []Message
	for {
		answered := false
		for _, o := range p.drainTo() {
			if o.m.Type == MsgPing && o.to == from.addr && !from.silent {
				p.core.HandleMessage(now, from.addr, from.kp.Public(), Message{Type: MsgPong, TxID: o.m.TxID, Observed: p.addr}.Append(nil))
				answered = true
				continue
			}
			out = append(out, o.m)
		}
		if !answered {
			return out
		}
	}
}

type sentMsg struct {
	to netip.AddrPort
	m  Message
}

func (p *testPeer) drainTo() []sentMsg {
	p.t.Helper()
	var out []sentMsg
	for _, o := range readyOf(p.core).Messages {
		m, err := DecodeMessage(o.Payload)
		if err != nil {
			p.t.Fatalf("core produced an undecodable message: %v", err)
		}
		if len(o.Payload) > MaxMessageSize {
			p.t.Fatalf("core produced a %d-byte message", len(o.Payload))
		}
		out = append(out, sentMsg{o.To, m})
	}
	return out
}

func (p *testPeer) drain() []Message {
	p.t.Helper()
	var out []Message
	for _, o := range p.drainTo() {
		out = append(out, o.m)
	}
	return out
}

// tokenFrom asks p for a token as `from`.
func (p *testPeer) tokenFrom(now time.Time, from *testPeer, key Key) []byte {
	p.t.Helper()
	rs := p.deliver(now, from, Message{Type: MsgGetProviders, TxID: 1, Target: key})
	if len(rs) != 1 || rs[0].Type != MsgProviders || len(rs[0].Token) == 0 {
		p.t.Fatalf("get providers: got %+v, want one providers reply with a token", rs)
	}
	return rs[0].Token
}

func ackOf(t *testing.T, rs []Message) uint8 {
	t.Helper()
	if len(rs) != 1 || rs[0].Type != MsgAddProviderAck {
		t.Fatalf("got %d replies %+v, want one add provider ack", len(rs), rs)
	}
	return rs[0].Status
}

func TestAddProviderChecks(t *testing.T) {
	now := t0.Add(time.Hour)
	key := Key{7}
	tests := []struct {
		name    string
		make    func(a, b, c *testPeer) Message // b sends to a; c is a third party
		status  uint8
		counter func(Counters) uint64
	}{
		{"valid", func(a, b, c *testPeer) Message {
			return Message{Type: MsgAddProvider, TxID: 2, Token: a.tokenFrom(now, b, key), Records: []Record{signedRecord(b, key, now)}}
		}, AckStored, func(c Counters) uint64 { return c.RecordsStored }},
		{"no token", func(a, b, c *testPeer) Message {
			return Message{Type: MsgAddProvider, TxID: 2, Records: []Record{signedRecord(b, key, now)}}
		}, AckBadToken, func(c Counters) uint64 { return c.BadTokens }},
		{"wrong token", func(a, b, c *testPeer) Message {
			tok := a.tokenFrom(now, b, key)
			tok[0] ^= 1
			return Message{Type: MsgAddProvider, TxID: 2, Token: tok, Records: []Record{signedRecord(b, key, now)}}
		}, AckBadToken, func(c Counters) uint64 { return c.BadTokens }},
		{"token of another sender", func(a, b, c *testPeer) Message {
			return Message{Type: MsgAddProvider, TxID: 2, Token: a.tokenFrom(now, c, key), Records: []Record{signedRecord(b, key, now)}}
		}, AckBadToken, func(c Counters) uint64 { return c.BadTokens }},
		{"forged signature", func(a, b, c *testPeer) Message {
			r := signedRecord(b, key, now)
			r.Sig[10] ^= 0x40
			return Message{Type: MsgAddProvider, TxID: 2, Token: a.tokenFrom(now, b, key), Records: []Record{r}}
		}, AckBadSignature, func(c Counters) uint64 { return c.BadSignatures }},
		{"another publisher's record", func(a, b, c *testPeer) Message {
			return Message{Type: MsgAddProvider, TxID: 2, Token: a.tokenFrom(now, b, key), Records: []Record{signedRecord(c, key, now)}}
		}, AckForeignRecord, func(c Counters) uint64 { return c.ForeignRecords }},
		{"expired", func(a, b, c *testPeer) Message {
			r := Record{Content: key, Expires: now.Add(-time.Second).Unix()}
			r.sign(b.kp)
			return Message{Type: MsgAddProvider, TxID: 2, Token: a.tokenFrom(now, b, key), Records: []Record{r}}
		}, AckBadExpiry, func(c Counters) uint64 { return c.BadExpiry }},
		{"too long lived", func(a, b, c *testPeer) Message {
			r := Record{Content: key, Expires: now.Add(30 * 24 * time.Hour).Unix()}
			r.sign(b.kp)
			return Message{Type: MsgAddProvider, TxID: 2, Token: a.tokenFrom(now, b, key), Records: []Record{r}}
		}, AckBadExpiry, func(c Counters) uint64 { return c.BadExpiry }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b, c := newTestPeer(t, 1, Config{}), newTestPeer(t, 2, Config{}), newTestPeer(t, 3, Config{})
			st := ackOf(t, a.deliver(now, b, tt.make(a, b, c)))
			if st != tt.status {
				t.Fatalf("ack status %d, want %d", st, tt.status)
			}
			if got := tt.counter(a.core.Counters()); got != 1 {
				t.Fatalf("counter for %q is %d, want 1 (counters %+v)", tt.name, got, a.core.Counters())
			}
			wantStored := 0
			if tt.status == AckStored {
				wantStored = 1
			}
			if got := a.core.StoredRecords(); got != wantStored {
				t.Fatalf("stored records %d, want %d", got, wantStored)
			}
		})
	}
}

func signedRecord(p *testPeer, key Key, now time.Time) Record {
	r := Record{Content: key, Expires: now.Add(time.Hour).Unix(), Addrs: []netip.AddrPort{p.addr}}
	r.sign(p.kp)
	return r
}

func TestTokenLifetime(t *testing.T) {
	a, b := newTestPeer(t, 1, Config{}), newTestPeer(t, 2, Config{})
	key := Key{9}
	tok := a.tokenFrom(t0, b, key)
	// One rotation later the token still works; two rotations later it does not.
	for _, tc := range []struct {
		after time.Duration
		want  uint8
	}{{6 * time.Minute, AckStored}, {12 * time.Minute, AckBadToken}} {
		now := t0.Add(tc.after)
		a.core.Tick(now)
		a.drain()
		st := ackOf(t, a.deliver(now, b, Message{Type: MsgAddProvider, TxID: 3, Token: tok, Records: []Record{signedRecord(b, key, now)}}))
		if st != tc.want {
			t.Fatalf("token used %v after issue: status %d, want %d", tc.after, st, tc.want)
		}
	}
}

func TestBadPayloadsCounted(t *testing.T) {
	a, b := newTestPeer(t, 1, Config{}), newTestPeer(t, 2, Config{})
	ping := Message{Type: MsgPing, TxID: 5}.Append(nil)
	tests := []struct {
		name    string
		payload []byte
		counter func(Counters) uint64
	}{
		{"oversized", make([]byte, MaxMessageSize+1), func(c Counters) uint64 { return c.Oversized }},
		{"truncated", ping[:4], func(c Counters) uint64 { return c.Malformed }},
		{"bad version", append([]byte{9}, ping[1:]...), func(c Counters) uint64 { return c.Malformed }},
		{"garbage", []byte("hello, this is not a DHT message"), func(c Counters) uint64 { return c.Malformed }},
		{"unexpected reply", Message{Type: MsgPong, TxID: 99, Observed: a.addr}.Append(nil), func(c Counters) uint64 { return c.UnexpectedReplies }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.counter(a.core.Counters())
			a.core.HandleMessage(t0, b.addr, b.kp.Public(), tt.payload)
			if out := a.drain(); len(out) != 0 {
				t.Fatalf("bad payload %d got %d replies", i, len(out))
			}
			if got := tt.counter(a.core.Counters()) - before; got != 1 {
				t.Fatalf("counter rose by %d, want 1", got)
			}
		})
	}
	if a.core.TableSize() != 0 {
		t.Fatalf("a sender of only bad payloads entered the routing table")
	}
}

func TestReplyFromWrongNode(t *testing.T) {
	a, b, c := newTestPeer(t, 1, Config{}), newTestPeer(t, 2, Config{}), newTestPeer(t, 3, Config{})
	// a learns b, then looks something up: its find node goes to b.
	a.deliver(t0, b, Message{Type: MsgPing, TxID: 1})
	a.core.FindNode(t0, Key{1})
	out := a.drain()
	if len(out) != 1 || out[0].Type != MsgFindNode {
		t.Fatalf("lookup sent %+v, want one find node", out)
	}
	// c answers in b's place, from b's address: refused.
	reply := Message{Type: MsgNodes, TxID: out[0].TxID}.Append(nil)
	a.core.HandleMessage(t0, b.addr, c.kp.Public(), reply)
	if got := a.core.Counters().UnexpectedReplies; got != 1 {
		t.Fatalf("UnexpectedReplies = %d after a reply from the wrong key, want 1", got)
	}
	// b's own answer is taken, and ends the lookup.
	a.core.HandleMessage(t0, b.addr, b.kp.Public(), reply)
	rd := readyOf(a.core)
	if len(rd.Events) != 1 || rd.Events[0].Kind != EventDone || rd.Events[0].Err != nil {
		t.Fatalf("events %+v, want one successful EventDone", rd.Events)
	}
}

func TestFloodRateLimited(t *testing.T) {
	cfg := Config{RequestRate: 10, RequestBurst: 20}
	a, b := newTestPeer(t, 1, cfg), newTestPeer(t, 2, cfg)
	replies := 0
	for i := range 1000 {
		now := t0.Add(time.Duration(i) * time.Millisecond) // 1,000 requests in one second
		replies += len(a.deliver(now, b, Message{Type: MsgFindNode, TxID: uint32(i), Target: Key{byte(i)}}))
	}
	// 20 of burst plus about 10 refilled over the second.
	if replies < 20 || replies > 31 {
		t.Fatalf("answered %d of 1,000 flooded requests, want 20..31", replies)
	}
	if got := a.core.Counters().RateLimited; got != uint64(1000-replies) {
		t.Fatalf("RateLimited = %d, want %d", got, 1000-replies)
	}
	// Another sender is not affected.
	c := newTestPeer(t, 3, cfg)
	if rs := a.deliver(t0.Add(time.Second), c, Message{Type: MsgPing, TxID: 1}); len(rs) != 1 {
		t.Fatalf("a second sender got %d replies to a ping during the flood, want 1", len(rs))
	}
}

func TestStorageBounds(t *testing.T) {
	cfg := Config{MaxRecordsPerProvider: 2, MaxProvidersPerKey: 2, MaxRecords: 3}
	a := newTestPeer(t, 1, cfg)
	peers := []*testPeer{newTestPeer(t, 2, cfg), newTestPeer(t, 3, cfg), newTestPeer(t, 4, cfg)}
	now := t0
	store := func(p *testPeer, key Key) uint8 {
		tok := a.tokenFrom(now, p, key)
		return ackOf(t, a.deliver(now, p, Message{Type: MsgAddProvider, TxID: 1, Token: tok, Records: []Record{signedRecord(p, key, now)}}))
	}
	steps := []struct {
		name string
		p    int
		key  Key
		want uint8
	}{
		{"first", 0, Key{1}, AckStored},
		{"second key same provider", 0, Key{2}, AckStored},
		{"third key same provider", 0, Key{3}, AckFull},
		{"same record again replaces", 0, Key{1}, AckStored},
		{"second provider of key 1", 1, Key{1}, AckStored},
		{"third provider of key 1", 2, Key{1}, AckFull},
		{"total bound", 2, Key{4}, AckFull},
	}
	for _, s := range steps {
		if got := store(peers[s.p], s.key); got != s.want {
			t.Fatalf("%s: status %d, want %d", s.name, got, s.want)
		}
	}
	if got := a.core.StoredRecords(); got != 3 {
		t.Fatalf("stored %d records, want 3", got)
	}
	if got := a.core.Counters().StoreFull; got != 3 {
		t.Fatalf("StoreFull = %d, want 3", got)
	}
	// Records expire.
	a.core.Tick(now.Add(2 * time.Hour))
	if got := a.core.StoredRecords(); got != 0 {
		t.Fatalf("%d records left after expiry, want 0", got)
	}
}

func TestBadRecordInLookupReply(t *testing.T) {
	a, b, c := newTestPeer(t, 1, Config{}), newTestPeer(t, 2, Config{}), newTestPeer(t, 3, Config{})
	key := Key{5}
	a.deliver(t0, b, Message{Type: MsgPing, TxID: 1})
	id := a.core.FindProviders(t0, key)
	out := a.drain()
	if len(out) != 1 || out[0].Type != MsgGetProviders {
		t.Fatalf("lookup sent %+v, want one get providers", out)
	}
	forged := signedRecord(c, key, t0)
	forged.Addrs = []netip.AddrPort{b.addr} // changed after signing
	other := signedRecord(c, Key{6}, t0)    // valid, but for another key
	reply := Message{Type: MsgProviders, TxID: out[0].TxID, Records: []Record{forged, other}}
	a.core.HandleMessage(t0, b.addr, b.kp.Public(), reply.Append(nil))
	rd := readyOf(a.core)
	for _, e := range rd.Events {
		if e.Kind == EventProvider {
			t.Fatalf("lookup %d reported provider %s from a bad record", id, e.Provider.ID.Short())
		}
	}
	cs := a.core.Counters()
	if cs.BadSignatures != 1 || cs.ForeignRecords != 1 {
		t.Fatalf("BadSignatures=%d ForeignRecords=%d, want 1 and 1", cs.BadSignatures, cs.ForeignRecords)
	}
}

func TestProvidersReplyFits(t *testing.T) {
	// A node holding many IPv6-addressed records answers within one datagram.
	cfg := Config{MaxProvidersPerKey: 64}
	a := newTestPeer(t, 1, cfg)
	key := Key{3}
	for i := range 40 {
		p := newTestPeer(t, uint64(100+i), cfg)
		r := Record{Content: key, Expires: t0.Add(time.Hour).Unix()}
		for j := range MaxRecordAddrs {
			r.Addrs = append(r.Addrs, netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), uint16(1000+j)))
		}
		r.sign(p.kp)
		if st := a.core.store.put(r, sourceGroup(p.addr.Addr())); st != AckStored {
			t.Fatalf("put %d: %d", i, st)
		}
		a.deliver(t0, p, Message{Type: MsgPing, TxID: 1})
	}
	asker := newTestPeer(t, 999, cfg)
	rs := a.deliver(t0, asker, Message{Type: MsgGetProviders, TxID: 9, Target: key})
	if len(rs) != 1 || len(rs[0].Records) == 0 {
		t.Fatalf("got %+v, want a providers reply with records", rs)
	}
	if n := len(rs[0].Append(nil)); n > MaxMessageSize {
		t.Fatalf("providers reply is %d bytes, over %d", n, MaxMessageSize)
	}
}
