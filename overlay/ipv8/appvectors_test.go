package ipv8

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Golden datagrams packed and signed by py-ipv8 3.2 itself
// (LazyCommunity.ezr_pack) for a chat payload: message 42, one
// varlenHutf8 field "text". See ../shared/ipv8-app-vectors.md.
const (
	appVectorKey       = "4c69624e61434c534b3a6e87e70f5dd3bbd8796bca25cdb3da5d0a58dd8724ad0d5cb735f2ee9dbfe7099f55d42a430acb817947654f068228f2b8075a9090d233be0ad11309ce07b840"
	appVectorCommunity = "5348f41c0a1d00000000000000000000000000aa"
	appVectorText      = "hello from py-ipv8"
	appVectorSigned    = "00025348f41c0a1d00000000000000000000000000aa2a004a4c69624e61434c504b3a10cf814d8ca3e9bd4015508813ae81c71d61eb4b51cc55f5adc8b0ba0ed3d223ad57a1f15cd6c7c43b42edbe669b9357d3b1a4d4c196ac588bc6c8613fe17d0f001268656c6c6f2066726f6d2070792d69707638e57551f4cca6694e4536c03d4ff305f1818c878be82c14d58ae56034ce19e54a7bc20aad59b659c7232a439f989be2d23f38dcb6e20cb2c8dc4a7f8fb66a9505"
	appVectorSignedGT7 = "00025348f41c0a1d00000000000000000000000000aa2a004a4c69624e61434c504b3a10cf814d8ca3e9bd4015508813ae81c71d61eb4b51cc55f5adc8b0ba0ed3d223ad57a1f15cd6c7c43b42edbe669b9357d3b1a4d4c196ac588bc6c8613fe17d0f0000000000000007001268656c6c6f2066726f6d2070792d697076382490fce49566fe66bfea25e449a1a3b30047878f89673d0e188425cd6c256fd8259741e00dd182f139e76c246046136a22729e4b847d7ab7da327e1bb7baa004"
	appVectorUnsigned  = "00025348f41c0a1d00000000000000000000000000aa2a001268656c6c6f2066726f6d2070792d69707638"
)

func appVectorKeyPair(t testing.TB) *identity.KeyPair {
	t.Helper()
	raw, err := hex.DecodeString(appVectorKey)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := identity.ParseSecretKey(raw)
	if err != nil {
		t.Fatalf("ParseSecretKey: %v", err)
	}
	return kp
}

func TestPyIPv8AppVectors(t *testing.T) {
	kp := appVectorKeyPair(t)
	cid := MustCommunityID(appVectorCommunity)
	tests := []struct {
		name    string
		hex     string
		framing Framing
		gt      uint64
		size    int
	}{
		{"signed, py-ipv8 default (no global time)", appVectorSigned, FramingSignedNoTime, 0, 183},
		{"signed, GlobalTimeDistributionPayload 7", appVectorSignedGT7, FramingSigned, 7, 191},
		{"unsigned, py-ipv8 default", appVectorUnsigned, FramingUnsignedNoTime, 0, 43},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != tc.size {
				t.Fatalf("vector is %d bytes, the doc says %d", len(want), tc.size)
			}
			m, err := Decode(want, tc.framing)
			if err != nil {
				t.Fatalf("decoding py-ipv8's datagram: %v", err)
			}
			if m.Community != cid || m.ID != 42 || m.Signed != tc.framing.Signed() ||
				m.HasGlobalTime != tc.framing.GlobalTime() || m.GlobalTime != tc.gt {
				t.Fatalf("decoded community %s id %d signed %v time %v/%d", m.Community, m.ID, m.Signed, m.HasGlobalTime, m.GlobalTime)
			}
			if m.Signed && m.Key != kp.Public() {
				t.Fatalf("decoded key %x, want the test key's", m.Key[:])
			}
			r := NewFieldReader(m.Payload)
			if text := r.VarlenHUTF8(); text != appVectorText || r.Done() != nil {
				t.Fatalf("text field %q (err %v), want %q", text, r.Done(), appVectorText)
			}
			payload, err := NewFieldWriter(nil).VarlenHUTF8(appVectorText).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			got := AppendFramed(nil, kp, cid, 42, tc.framing, tc.gt, payload)
			if !bytes.Equal(got, want) {
				t.Fatalf("shoal encodes\n%x\nwant py-ipv8's\n%x", got, want)
			}
			if again := AppendMessage(nil, &m); !bytes.Equal(again, want) {
				t.Fatalf("AppendMessage of the decoded message differs:\n%x", again)
			}
		})
	}
}

// framingCommunity speaks message 42 in one framing and counts it.
type framingCommunity struct {
	f   Framing
	got []Message
}

func (c *framingCommunity) Framing(id byte) Framing {
	if id == 42 {
		return c.f
	}
	return FramingUnknown
}
func (c *framingCommunity) HandleMessage(m *Message) { c.got = append(c.got, *m) }

// TestLamportClockOnlyFromGlobalTime: py-ipv8's default framing carries
// no global time, so its payload bytes must never raise the clock (shoal
// once read the first 8 bytes of a text as a time); the global-time
// framing raises it to the sent value.
func TestLamportClockOnlyFromGlobalTime(t *testing.T) {
	tests := []struct {
		hex       string
		f         Framing
		wantClock uint64
	}{
		{appVectorSigned, FramingSignedNoTime, 0},
		{appVectorUnsigned, FramingUnsignedNoTime, 0},
		{appVectorSignedGT7, FramingSigned, 7},
	}
	for _, tc := range tests {
		t.Run(tc.f.String(), func(t *testing.T) {
			ep, err := NewEndpoint(discardWriter{}, Config{Key: fixedKey(t)})
			if err != nil {
				t.Fatal(err)
			}
			c := &framingCommunity{f: tc.f}
			if err := ep.Register(MustCommunityID(appVectorCommunity), c); err != nil {
				t.Fatal(err)
			}
			b, _ := hex.DecodeString(tc.hex)
			ep.HandlePacket(ap("127.0.0.1:9"), b)
			if len(c.got) != 1 {
				t.Fatalf("%d messages delivered, want 1 (stats %+v)", len(c.got), ep.Stats())
			}
			if r := NewFieldReader(c.got[0].Payload); r.VarlenHUTF8() != appVectorText || r.Done() != nil {
				t.Fatalf("payload %x does not read as the text", c.got[0].Payload)
			}
			if g := ep.GlobalTime(); g != tc.wantClock {
				t.Fatalf("clock %d after the message, want %d", g, tc.wantClock)
			}
		})
	}
}
