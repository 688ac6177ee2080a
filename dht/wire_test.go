package dht

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

func testKeyPair(t testing.TB, seed uint64) *identity.KeyPair {
	t.Helper()
	kp, err := identity.Generate(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 1}))
	if err != nil {
		t.Fatalf("generating key: %v", err)
	}
	return kp
}

func testRecord(t testing.TB, kp *identity.KeyPair, content Key, addrs ...netip.AddrPort) Record {
	r := Record{Content: content, Expires: 1_800_000_000, Addrs: addrs}
	r.sign(kp)
	return r
}

// sampleMessages returns one real encoding of every message type.
func sampleMessages(t testing.TB) map[string]Message {
	kp := testKeyPair(t, 1)
	v4 := netip.MustParseAddrPort("127.0.0.1:4000")
	v6 := netip.MustParseAddrPort("[::1]:5000")
	rng := rand.New(rand.NewPCG(9, 9))
	contacts := []Contact{{ID: identity.PeerID(randKey(rng)), Addr: v4}, {ID: identity.PeerID(randKey(rng)), Addr: v6}}
	rec := testRecord(t, kp, randKey(rng), v4, v6)
	return map[string]Message{
		"ping":               {Type: MsgPing, TxID: 1},
		"pong v4":            {Type: MsgPong, TxID: 2, Observed: v4},
		"pong v6":            {Type: MsgPong, TxID: 3, Observed: v6},
		"find node":          {Type: MsgFindNode, TxID: 4, Target: randKey(rng)},
		"nodes":              {Type: MsgNodes, TxID: 5, Contacts: contacts},
		"nodes empty":        {Type: MsgNodes, TxID: 6},
		"get providers":      {Type: MsgGetProviders, TxID: 7, Target: randKey(rng)},
		"get providers page": {Type: MsgGetProviders, TxID: 12, Target: randKey(rng), Skip: 5},
		"providers":          {Type: MsgProviders, TxID: 8, Token: []byte("0123456789abcdef"), Records: []Record{rec}, Contacts: contacts},
		"providers none":     {Type: MsgProviders, TxID: 9, Token: []byte("t"), Contacts: contacts},
		"add provider":       {Type: MsgAddProvider, TxID: 10, Token: []byte("0123456789abcdef"), Records: []Record{rec}},
		"ack":                {Type: MsgAddProviderAck, TxID: 11, Status: AckBadToken},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for name, m := range sampleMessages(t) {
		t.Run(name, func(t *testing.T) {
			b := m.Append(nil)
			if len(b) > MaxMessageSize {
				t.Fatalf("encoding is %d bytes, over %d", len(b), MaxMessageSize)
			}
			got, err := DecodeMessage(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, m)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	msgs := sampleMessages(t)
	prov := msgs["providers"].Append(nil)
	mapped := Message{Type: MsgPong, TxID: 1, Observed: netip.MustParseAddrPort("[::1]:5")}.Append(nil)
	copy(mapped[7:23], netip.MustParseAddr("::ffff:1.2.3.4").AsSlice())
	zeroPort := Message{Type: MsgPong, Observed: netip.MustParseAddrPort("1.2.3.4:1")}.Append(nil)
	zeroPort[len(zeroPort)-1] = 0
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"short header", []byte{Version, 1, 0}, ErrMalformed},
		{"bad version", []byte{2, 1, 0, 0, 0, 0}, ErrVersion},
		{"unknown type", []byte{Version, 99, 0, 0, 0, 0}, ErrMalformed},
		{"oversized", make([]byte, MaxMessageSize+1), ErrTooLarge},
		{"truncated providers", prov[:len(prov)-1], ErrMalformed},
		{"trailing byte", append(msgs["ping"].Append(nil), 0), ErrMalformed},
		{"huge contact count", []byte{Version, byte(MsgNodes), 0, 0, 0, 0, 255}, ErrMalformed},
		{"huge record count", []byte{Version, byte(MsgProviders), 0, 0, 0, 0, 0, 200}, ErrMalformed},
		{"token too long", append([]byte{Version, byte(MsgAddProvider), 0, 0, 0, 0, 33}, make([]byte, 300)...), ErrMalformed},
		{"mapped ipv6", mapped, ErrMalformed},
		{"zero port", zeroPort, ErrMalformed},
		{"bad ack", []byte{Version, byte(MsgAddProviderAck), 0, 0, 0, 0, numAcks}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeMessage(tt.b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeMessage error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRecordSignature(t *testing.T) {
	kp := testKeyPair(t, 2)
	r := testRecord(t, kp, Key{1}, netip.MustParseAddrPort("127.0.0.1:9"))
	if !r.Verify() {
		t.Fatalf("fresh record does not verify")
	}
	tests := map[string]func(r *Record){
		"content":   func(r *Record) { r.Content[0] ^= 1 },
		"expiry":    func(r *Record) { r.Expires++ },
		"address":   func(r *Record) { r.Addrs = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:10")} },
		"signature": func(r *Record) { r.Sig[3] ^= 1 },
		"key":       func(r *Record) { r.Key = testKeyPair(t, 3).Public() },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			c := r
			c.Addrs = append([]netip.AddrPort(nil), r.Addrs...)
			mutate(&c)
			if c.Verify() {
				t.Fatalf("record with changed %s still verifies", name)
			}
		})
	}
}

// FuzzMessage decodes arbitrary bytes; whatever decodes must re-encode to
// the same bytes and decode to the same message.
func FuzzMessage(f *testing.F) {
	for _, m := range sampleMessages(f) {
		f.Add(m.Append(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		b2 := m.Append(nil)
		if !bytes.Equal(b, b2) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, b2)
		}
		m2, err := DecodeMessage(b2)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("second decode differs:\n%+v\n%+v", m, m2)
		}
	})
}

// FuzzRecord round-trips provider records.
func FuzzRecord(f *testing.F) {
	m := sampleMessages(f)["add provider"]
	f.Add(m.Records[0].Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		b2 := r.Append(nil)
		if !bytes.Equal(b, b2) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, b2)
		}
		if r.size() != len(b) {
			t.Fatalf("size() = %d, encoding is %d bytes", r.size(), len(b))
		}
		_ = r.Verify() // must not panic on any key or signature
	})
}

func BenchmarkDecodeProviders(b *testing.B) {
	enc := sampleMessages(b)["providers"].Append(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := DecodeMessage(enc); err != nil {
			b.Fatal(err)
		}
	}
}
