package swarm

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func testID(b byte) [32]byte {
	var id [32]byte
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func TestRequestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		size int
	}{
		{"session", Request{Kind: KindSession, ID: testID(1)}, 34},
		{"manifest", Request{Kind: KindManifest, ID: testID(2)}, 34},
		{"leaves", Request{Kind: KindLeaves, ID: testID(3)}, 34},
		{"chunk", Request{Kind: KindChunk, ID: testID(4), Index: 0x01020304}, 38},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendRequest(nil, tc.req)
			if len(b) != tc.size {
				t.Fatalf("encoding is %d bytes, want %d", len(b), tc.size)
			}
			got, err := DecodeRequest(b)
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if got != tc.req {
				t.Fatalf("DecodeRequest = %+v, want %+v", got, tc.req)
			}
			// ReadRequest must stop exactly at the end of the request.
			r := bytes.NewReader(append(b, 0xee))
			got, err = ReadRequest(r)
			if err != nil || got != tc.req {
				t.Fatalf("ReadRequest = %+v, %v; want %+v", got, err, tc.req)
			}
			if r.Len() != 1 {
				t.Fatalf("ReadRequest left %d bytes, want 1", r.Len())
			}
		})
	}
}

func TestRequestRejects(t *testing.T) {
	good := AppendRequest(nil, Request{Kind: KindChunk, ID: testID(9), Index: 7})
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrProtocol},
		{"version", append([]byte{2}, good[1:]...), ErrVersion},
		{"kind", append([]byte{Version, 9}, good[2:]...), ErrProtocol},
		{"short", good[:20], ErrProtocol},
		{"truncated index", good[:36], ErrProtocol},
		{"trailing", append(append([]byte{}, good...), 0), ErrProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeRequest(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("DecodeRequest(%x) error = %v, want %v", tc.b, err, tc.want)
			}
		})
	}
}

func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
	}{
		{"hello all", Message{Type: MsgHello, N: 100, All: true}},
		{"hello empty", Message{Type: MsgHello, N: 0, Bitmap: []byte{}}},
		{"hello bitmap", Message{Type: MsgHello, N: 11, Bitmap: []byte{0xa5, 0x07}}},
		{"have one", Message{Type: MsgHave, Indexes: []uint32{42}}},
		{"have many", Message{Type: MsgHave, Indexes: []uint32{1, 2, 3, 1 << 21}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendMessage(nil, tc.msg)
			got, err := DecodeMessage(b)
			if err != nil {
				t.Fatalf("DecodeMessage(%x): %v", b, err)
			}
			if !reflect.DeepEqual(got, tc.msg) {
				t.Fatalf("DecodeMessage = %+v, want %+v", got, tc.msg)
			}
			mr := msgReader{r: bytes.NewReader(append(b, b...))}
			for i := range 2 {
				got, err := mr.next()
				if err != nil || !reflect.DeepEqual(got, tc.msg) {
					t.Fatalf("msgReader message %d = %+v, %v; want %+v", i, got, err, tc.msg)
				}
			}
		})
	}
}

func TestMessageRejects(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"unknown type", []byte{9, 0, 0, 0, 0}},
		{"hello too short", []byte{1, 0, 0, 0, 4, 0, 0, 0, 0}},
		{"hello huge", []byte{1, 0xff, 0xff, 0xff, 0xff}},
		{"hello bad flags", []byte{1, 0, 0, 0, 5, 2, 0, 0, 0, 0}},
		{"hello all with bitmap", []byte{1, 0, 0, 0, 6, 1, 0, 0, 0, 8, 0xff}},
		{"hello short bitmap", []byte{1, 0, 0, 0, 5, 0, 0, 0, 0, 8}},
		{"hello spare bits", []byte{1, 0, 0, 0, 6, 0, 0, 0, 0, 4, 0x10}},
		{"hello too many chunks", []byte{1, 0, 0, 0, 5, 1, 0xff, 0, 0, 0}},
		{"have empty", []byte{2, 0, 0, 0, 0}},
		{"have odd", []byte{2, 0, 0, 0, 3, 1, 2, 3}},
		{"have huge", []byte{2, 0, 1, 0, 0}},
		{"truncated", []byte{2, 0, 0, 0, 8, 0, 0, 0, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := DecodeMessage(tc.b); !errors.Is(err, ErrProtocol) {
				t.Fatalf("DecodeMessage(%x) = %+v, %v; want ErrProtocol", tc.b, m, err)
			}
		})
	}
}

func TestResponse(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		min     int
		max     int
		wantN   int
		wantErr Status // StatusOK: no StatusError
		proto   bool
	}{
		{"ok", AppendResponseHeader(nil, StatusOK, 100), 100, 100, 100, StatusOK, false},
		{"ok too long", AppendResponseHeader(nil, StatusOK, 101), 0, 100, 0, StatusOK, true},
		{"ok too short", AppendResponseHeader(nil, StatusOK, 99), 100, 100, 0, StatusOK, true},
		{"busy", AppendError(nil, StatusBusy, "8 requests in flight"), 0, 10, 0, StatusBusy, false},
		{"not found", AppendError(nil, StatusNotFound, ""), 0, 10, 0, StatusNotFound, false},
		{"unknown status", []byte{77, 0, 0, 0, 0}, 0, 10, 0, StatusOK, true},
		{"long reason", []byte{1, 0, 0, 1, 0}, 0, 10, 0, StatusOK, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := readResponse(bytes.NewReader(tc.b), tc.min, tc.max)
			switch {
			case tc.proto:
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("readResponse error = %v, want ErrProtocol", err)
				}
			case tc.wantErr != StatusOK:
				if !IsStatus(err, tc.wantErr) {
					t.Fatalf("readResponse error = %v, want status %s", err, tc.wantErr)
				}
			default:
				if err != nil || n != tc.wantN {
					t.Fatalf("readResponse = %d, %v; want %d", n, err, tc.wantN)
				}
			}
		})
	}
	long := AppendError(nil, StatusBusy, string(bytes.Repeat([]byte("é"), 200)))
	if _, err := readResponse(bytes.NewReader(long), 0, 0); !IsStatus(err, StatusBusy) {
		t.Fatalf("long reason: error = %v, want busy", err)
	}
}
