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
