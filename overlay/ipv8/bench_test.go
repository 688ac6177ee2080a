package ipv8

import (
	"net"
	"net/netip"
	"testing"
)

type discardWriter struct{}

func (discardWriter) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }

// FuzzHandlePacket: no input crashes the endpoint, and every datagram is
// counted exactly once.
func FuzzHandlePacket(f *testing.F) {
	seedAll(f)
	ep, err := NewEndpoint(discardWriter{}, Config{Key: fixedKey(f), RatePerSecond: 1e9})
	if err != nil {
		f.Fatal(err)
	}
	rec := &recorder{ep: ep, ch: make(chan struct{}, 1)}
	if err := ep.Register(discoveryCommunity, rec); err != nil {
		f.Fatal(err)
	}
	from := netip.MustParseAddrPort("127.0.0.1:9")
	f.Fuzz(func(t *testing.T, b []byte) {
		ep.HandlePacket(from, b)
		s := ep.Stats()
		if s.Received != s.Delivered+s.Answered+s.Dropped() {
			t.Fatalf("received %d != delivered %d + answered %d + dropped %d", s.Received, s.Delivered, s.Answered, s.Dropped())
		}
	})
}

func BenchmarkDecodeSigned(b *testing.B) {
	dg := goldenDatagrams(b)["intro_request_new"]
	b.SetBytes(int64(len(dg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSigned(dg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendSigned(b *testing.B) {
	kp := fixedKey(b)
	req := IntroRequest{NewStyle: true, Destination: ap("1.2.3.4:5"), SourceLAN: ap("10.0.0.1:5"), SourceWAN: ap("1.2.3.5:5")}
	buf := make([]byte, 0, MaxDatagramSize)
	b.ReportAllocs()
	b.SetBytes(195)
	for b.Loop() {
		p, _ := req.Append(buf[:0])
		_ = AppendSigned(make([]byte, 0, 256), kp, discoveryCommunity, MsgIntroRequest, 1, p)
	}
}

func BenchmarkDecodeIntroResponse(b *testing.B) {
	m, err := DecodeSigned(goldenDatagrams(b)["intro_response_new"])
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(m.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeIntroResponse(m.ID, m.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandlePacket(b *testing.B) {
	ep, err := NewEndpoint(discardWriter{}, Config{Key: fixedKey(b), RatePerSecond: 1e12})
	if err != nil {
		b.Fatal(err)
	}
	if err := ep.Register(discoveryCommunity, nullCommunity{}); err != nil {
		b.Fatal(err)
	}
	dg := goldenDatagrams(b)["intro_request_new"]
	from := netip.MustParseAddrPort("127.0.0.1:9")
	b.SetBytes(int64(len(dg)))
	b.ReportAllocs()
	for b.Loop() {
		ep.HandlePacket(from, dg)
	}
	if s := ep.Stats(); s.Delivered == 0 {
		b.Fatalf("nothing delivered: %+v", s)
	}
}

type nullCommunity struct{}

func (nullCommunity) Framing(byte) Framing   { return FramingSigned }
func (nullCommunity) HandleMessage(*Message) {}
