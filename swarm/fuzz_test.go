package swarm

import (
	"bytes"
	"reflect"
	"testing"
)

func FuzzRequest(f *testing.F) {
	for _, k := range []Kind{KindSession, KindManifest, KindLeaves, KindChunk} {
		f.Add(AppendRequest(nil, Request{Kind: k, ID: testID(byte(k)), Index: 12345}))
	}
	f.Add([]byte{Version, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		enc := AppendRequest(nil, r)
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding %+v gives %x, input was %x", r, enc, b)
		}
		r2, err := ReadRequest(bytes.NewReader(enc))
		if err != nil || r2 != r {
			t.Fatalf("ReadRequest(%x) = %+v, %v; want %+v", enc, r2, err, r)
		}
	})
}

func FuzzMessage(f *testing.F) {
	f.Add(AppendMessage(nil, Message{Type: MsgHello, N: 100, All: true}))
	f.Add(AppendMessage(nil, Message{Type: MsgHello, N: 11, Bitmap: []byte{0xa5, 0x07}}))
	f.Add(AppendMessage(nil, Message{Type: MsgHave, Indexes: []uint32{1, 2, 3}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		enc := AppendMessage(nil, m)
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding %+v gives %x, input was %x", m, enc, b)
		}
		m2, err := DecodeMessage(enc)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("second decode = %+v, %v; want %+v", m2, err, m)
		}
		mr := msgReader{r: bytes.NewReader(enc)}
		m3, err := mr.next()
		if err != nil || !reflect.DeepEqual(m, m3) {
			t.Fatalf("msgReader = %+v, %v; want %+v", m3, err, m)
		}
	})
}

func FuzzResponseHeader(f *testing.F) {
	f.Add(AppendResponseHeader(nil, StatusOK, 1<<18))
	f.Add(AppendError(nil, StatusBusy, "busy")[:responseHeaderLen])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, n, err := DecodeResponseHeader(b)
		if err != nil {
			return
		}
		if enc := AppendResponseHeader(nil, s, n); !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding (%s, %d) gives %x, input was %x", s, n, enc, b)
		}
		if s != StatusOK && n > MaxReason {
			t.Fatalf("accepted %s with a %d-byte reason", s, n)
		}
	})
}
