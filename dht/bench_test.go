package dht

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// benchCore returns a core whose table holds n random nodes.
func benchCore(b *testing.B, n int) *Core {
	c, err := NewCore(Config{RequestRate: 1e9, RequestBurst: 1 << 30}, testKeyPair(b, 1), rand.New(rand.NewPCG(1, 1)), t0)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for i := range n {
		c.table.seen(Contact{ID: identity.PeerID(randKey(rng)), Addr: testAddr(i)}, t0)
	}
	return c
}

// BenchmarkHandleFindNode measures answering one find node request: decode,
// rate limit, table update, closest-k, encode.
func BenchmarkHandleFindNode(b *testing.B) {
	c := benchCore(b, 5000)
	from := netip.MustParseAddrPort("127.0.0.1:9999")
	sender := testKeyPair(b, 2).Public()
	req := Message{Type: MsgFindNode, TxID: 1, Target: Key{1, 2, 3}}.Append(nil)
	var acts []Action
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		c.HandleMessage(t0, from, sender, req)
		acts, _ = c.Ready(acts[:0])
	}
}

// BenchmarkHandleGetProviders answers a get providers for a key with 20
// stored records (token HMAC included).
func BenchmarkHandleGetProviders(b *testing.B) {
	c := benchCore(b, 5000)
	key := Key{4}
	for i := range 20 {
		kp := testKeyPair(b, uint64(100+i))
		r := Record{Content: key, Expires: t0.Unix() + 3600, Addrs: []netip.AddrPort{testAddr(i)}}
		r.sign(kp)
		c.store.put(r, sourceGroup(testAddr(i).Addr()))
	}
	from := netip.MustParseAddrPort("127.0.0.1:9999")
	sender := testKeyPair(b, 2).Public()
	req := Message{Type: MsgGetProviders, TxID: 1, Target: key}.Append(nil)
	var acts []Action
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		c.HandleMessage(t0, from, sender, req)
		acts, _ = c.Ready(acts[:0])
	}
}

// BenchmarkRecordVerify is the cost of checking one provider record.
func BenchmarkRecordVerify(b *testing.B) {
	r := testRecord(b, testKeyPair(b, 1), Key{1}, netip.MustParseAddrPort("127.0.0.1:1"))
	b.ReportAllocs()
	b.SetBytes(int64(r.size()))
	for b.Loop() {
		if !r.Verify() {
			b.Fatal("record does not verify")
		}
	}
}
