package relay

import (
	"bytes"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, fr := range []Frame{
		{Type: TypeHello}, {Type: TypeCookie}, {Type: TypeRegister}, {Type: TypeRegistered, Lifetime: 60},
		{Type: TypeConnect}, {Type: TypeSession, Session: 7}, {Type: TypeData, Session: 9, Payload: []byte("x")},
		{Type: TypeRefused, Reason: ReasonFull},
	} {
		b, err := fr.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			return
		}
		out, err := fr.Append(nil)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", fr, err)
		}
		if fr.Type != TypeHello && !bytes.Equal(out, b) {
			t.Fatalf("round trip: %x became %x", b, out)
		}
		if len(out) != len(b) {
			t.Fatalf("round trip changed the length: %d to %d", len(b), len(out))
		}
	})
}
