package registry

import (
	"bytes"
	"testing"
)

func TestWireRoundTrip(t *testing.T) {
	d := Digest{1, 2, 3}
	got, err := decodeRequest(appendRequest(nil, d))
	if err != nil || got != d {
		t.Fatalf("request round trip: %v, %x", err, got)
	}
	for _, a := range []answer{
		{status: statusReady, size: 12345, content: [32]byte{9}},
		{status: statusPending, size: 99, have: 42},
		{status: statusUnknown},
	} {
		b := appendAnswer(nil, a)
		if len(b) > maxWireLen {
			t.Errorf("answer of %d bytes, over maxWireLen", len(b))
		}
		got, err := decodeAnswer(b)
		if err != nil || got != a {
			t.Errorf("answer %+v came back as %+v, %v", a, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {2, 2}, {1, 7}, {1, 2, 0}, {1, 0, 1}, append([]byte{1, 1, 0x80}, make([]byte, 15)...)} {
		if _, err := decodeAnswer(bad); err == nil {
			t.Errorf("decodeAnswer(%x) accepted", bad)
		}
	}
	if _, err := decodeRequest(append(appendRequest(nil, d), 0)); err == nil {
		t.Error("decodeRequest accepted a trailing byte")
	}
}

func FuzzDecodeAnswer(f *testing.F) {
	f.Add(appendAnswer(nil, answer{status: statusReady, size: 1, content: [32]byte{1}}))
	f.Add(appendAnswer(nil, answer{status: statusPending, size: 1, have: 1}))
	f.Add(appendAnswer(nil, answer{status: statusUnknown}))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeAnswer(b)
		if err != nil {
			return
		}
		b2 := appendAnswer(nil, a)
		if !bytes.Equal(b, b2) {
			t.Fatalf("re-encoded %x as %x", b, b2)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(appendRequest(nil, Digest{7}))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeRequest(b)
		if err != nil {
			return
		}
		if b2 := appendRequest(nil, d); !bytes.Equal(b, b2) {
			t.Fatalf("re-encoded %x as %x", b, b2)
		}
	})
}
