package ipv8

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"
)

// goldenDatagrams returns the datagrams of the golden vectors, as fuzz
// seeds.
func goldenDatagrams(t testing.TB) map[string][]byte {
	kp := fixedKey(t)
	out := make(map[string][]byte)
	for _, v := range goldenVectors() {
		p, err := v.build()
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if v.signed {
			out[v.name] = AppendSigned(nil, kp, discoveryCommunity, v.msgID, v.gt, p)
		} else {
			out[v.name] = AppendUnsigned(nil, discoveryCommunity, v.msgID, v.gt, p)
		}
	}
	return out
}

func seedAll(f *testing.F) {
	for _, dg := range goldenDatagrams(f) {
		f.Add(dg)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 2})
	f.Add(bytes.Repeat([]byte{0}, 200))
}

// FuzzSigned: a datagram that parses as signed re-encodes to the same
// bytes.
func FuzzSigned(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseSigned(b)
		if err != nil {
			return
		}
		again := AppendMessage(nil, &m)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
		m2, err := ParseSigned(again)
		if err != nil {
			t.Fatalf("re-encoded datagram does not parse: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("second parse %+v differs from first %+v", m2, m)
		}
		_, _ = DecodeSigned(b) // must not panic
	})
}

// FuzzUnsigned: a datagram that parses as unsigned re-encodes to the same
// bytes.
func FuzzUnsigned(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeUnsigned(b)
		if err != nil {
			return
		}
		again := AppendMessage(nil, &m)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
	})
}

// payloadOf extracts message ID and payload from a fuzz input in either
// framing, so payload fuzzers start from whole datagrams.
func payloadOf(b []byte) (byte, []byte, bool) {
	if m, err := ParseSigned(b); err == nil {
		return m.ID, m.Payload, true
	}
	if m, err := DecodeUnsigned(b); err == nil {
		return m.ID, m.Payload, true
	}
	return 0, nil, false
}

// roundTrip decodes p, encodes the result, decodes again and compares.
func roundTrip[T any](t *testing.T, id byte, p []byte, dec func(byte, []byte) (T, error), enc func(*T) ([]byte, error)) {
	t.Helper()
	v, err := dec(id, p)
	if err != nil {
		return
	}
	b, err := enc(&v)
	if err != nil {
		t.Fatalf("decoded %+v but cannot encode it: %v", v, err)
	}
	v2, err := dec(id, b)
	if err != nil {
		t.Fatalf("re-encoded payload %s does not decode: %v", hex.EncodeToString(b), err)
	}
	if !reflect.DeepEqual(v, v2) {
		t.Fatalf("round trip differs:\nfirst  %+v\nsecond %+v", v, v2)
	}
}

func FuzzIntroRequest(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		id, p, ok := payloadOf(b)
		if !ok {
			return
		}
		for _, try := range []byte{id, MsgIntroRequest, MsgIntroRequestOld} {
			roundTrip(t, try, p, DecodeIntroRequest, func(r *IntroRequest) ([]byte, error) { return r.Append(nil) })
		}
	})
}

func FuzzIntroResponse(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		id, p, ok := payloadOf(b)
		if !ok {
			return
		}
		for _, try := range []byte{id, MsgIntroResponse, MsgIntroResponseOld} {
			roundTrip(t, try, p, DecodeIntroResponse, func(r *IntroResponse) ([]byte, error) { return r.Append(nil) })
		}
	})
}

func FuzzPunctureRequest(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		id, p, ok := payloadOf(b)
		if !ok {
			return
		}
		for _, try := range []byte{id, MsgPunctureRequest, MsgPunctureRequestOld} {
			roundTrip(t, try, p, DecodePunctureRequest, func(r *PunctureRequest) ([]byte, error) { return r.Append(nil) })
		}
	})
}

func FuzzPuncture(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		id, p, ok := payloadOf(b)
		if !ok {
			return
		}
		for _, try := range []byte{id, MsgPuncture, MsgPunctureOld} {
			roundTrip(t, try, p, DecodePuncture, func(r *Puncture) ([]byte, error) { return r.Append(nil) })
		}
	})
}

func FuzzPing(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, p, ok := payloadOf(b)
		if !ok {
			return
		}
		roundTrip(t, MsgPing, p, func(_ byte, p []byte) (Ping, error) { return DecodePing(p) },
			func(r *Ping) ([]byte, error) { return r.Append(nil), nil })
	})
}

// FuzzDecodeFramed: every framing decodes without panicking, and a
// decoded message re-encodes to the same bytes.
func FuzzDecodeFramed(f *testing.F) {
	for _, h := range []string{appVectorSigned, appVectorSignedGT7, appVectorUnsigned} {
		b, _ := hex.DecodeString(h)
		f.Add(b, uint8(FramingSignedNoTime))
		f.Add(b, uint8(FramingSigned))
		f.Add(b, uint8(FramingUnsignedNoTime))
		f.Add(b, uint8(FramingUnsigned))
	}
	f.Fuzz(func(t *testing.T, b []byte, fr uint8) {
		fm := Framing(fr % 5)
		m, err := Decode(b, fm)
		if err != nil {
			return
		}
		if m.Framing() != fm {
			t.Fatalf("decoded in %v, reports %v", fm, m.Framing())
		}
		if again := AppendMessage(nil, &m); !bytes.Equal(again, b) {
			t.Fatalf("round trip differs:\n%x\n%x", b, again)
		}
	})
}

// FuzzFieldReader reads a payload as a mix of every field format chosen
// by the input, writes what it read back, and compares.
func FuzzFieldReader(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7}, []byte("\x00\x12hello from py-ipv8"))
	f.Add([]byte{5, 6}, []byte("\x01\x7f\x00\x00\x01\x1f\x90\x03"))
	f.Fuzz(func(t *testing.T, kinds, p []byte) {
		r := NewFieldReader(p)
		w := NewFieldWriter(nil)
		for _, k := range kinds {
			switch k % 10 {
			case 0:
				w.VarlenH(r.VarlenH())
			case 1:
				w.VarlenHUTF8(r.VarlenHUTF8())
			case 2:
				w.IPv4(r.IPv4())
			case 3:
				start := len(p) - r.Len()
				a := r.IPAddress()
				if r.Err() == nil && p[start] == AddrTypeIPv6 && a.Addr().Is4() {
					return // an IPv4-mapped IPv6 address comes back as IPv4 by design
				}
				w.IPAddress(a)
			case 4:
				w.Bits(r.Bits())
			case 5:
				w.Uint8(r.Uint8())
			case 6:
				w.Uint16(r.Uint16())
			case 7:
				w.Uint32(r.Uint32())
			case 8:
				w.Uint64(r.Uint64())
			case 9:
				w.Fixed(3, r.Fixed(3))
			}
			if r.Err() != nil {
				return
			}
		}
		w.Raw(r.Raw())
		out, err := w.Bytes()
		if err != nil {
			t.Fatalf("writing back what was read: %v", err)
		}
		if !bytes.Equal(out, p) {
			t.Fatalf("read then written:\n%x\nwant\n%x", out, p)
		}
	})
}
