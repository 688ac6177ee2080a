package ipv8

import (
	"errors"
	"net/netip"
	"testing"
)

func TestAddressEncodings(t *testing.T) {
	tests := []struct {
		name    string
		in      netip.AddrPort
		ipv4    string // hex of the ipv4 form, "" when it must fail
		ipAddr  string // hex of the ip_address form
		decoded netip.AddrPort
	}{
		{"ipv4", ap("1.2.3.4:258"), "010203040102", "01010203040102", ap("1.2.3.4:258")},
		{"zero value", netip.AddrPort{}, "000000000000", "01000000000000", ap("0.0.0.0:0")},
		{"mapped", ap("[::ffff:1.2.3.4]:1"), "010203040001", "01010203040001", ap("1.2.3.4:1")},
		{"ipv6", ap("[2001:db8::1]:80"), "", "0320010db8000000000000000000000001" + "0050", ap("[2001:db8::1]:80")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := AppendIPv4(nil, tc.in)
			switch {
			case tc.ipv4 == "" && !errors.Is(err, ErrNotIPv4):
				t.Errorf("AppendIPv4 error = %v, want ErrNotIPv4", err)
			case tc.ipv4 != "" && (err != nil || hexs(b) != tc.ipv4):
				t.Errorf("AppendIPv4 = %s, %v; want %s", hexs(b), err, tc.ipv4)
			}
			b = AppendIPAddress(nil, tc.in)
			if hexs(b) != tc.ipAddr {
				t.Errorf("AppendIPAddress = %s, want %s", hexs(b), tc.ipAddr)
			}
			got, rest, err := ReadIPAddress(b)
			if err != nil || got != tc.decoded || len(rest) != 0 {
				t.Errorf("ReadIPAddress = %v, %d left, %v; want %v", got, len(rest), err, tc.decoded)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	kp := fixedKey(t)
	c := discoveryCommunity
	signed := AppendSigned(nil, kp, c, 1, 7, []byte("payload"))
	req := goldenDatagrams(t)["intro_request_old"]
	reqMsg, err := DecodeSigned(req)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), signed...)
	flipped[len(flipped)-SignatureSize-3] ^= 0x04 // in the payload
	wrongKeyLen := append([]byte(nil), signed...)
	wrongKeyLen[24] = 73
	derKey := append([]byte(nil), signed...)
	derKey[25] = 0x30
	tests := []struct {
		name string
		err  error
		do   func() error
	}{
		{"empty", ErrMalformed, func() error { _, err := DecodeUnsigned(nil); return err }},
		{"QUIC first byte", ErrMalformed, func() error { _, err := DecodeUnsigned(append([]byte{0x40}, signed[1:]...)); return err }},
		{"wrong version", ErrMalformed, func() error { _, err := DecodeUnsigned(append([]byte{0, 1}, signed[2:]...)); return err }},
		{"unsigned without time", ErrMalformed, func() error { _, err := DecodeUnsigned(signed[:HeaderSize+7]); return err }},
		{"signed truncated signature", ErrMalformed, func() error { _, err := DecodeSigned(signed[:SignedOverhead-1]); return err }},
		{"signed flipped bit", ErrBadSignature, func() error { _, err := DecodeSigned(flipped); return err }},
		{"signed short key length", ErrMalformed, func() error { _, err := DecodeSigned(wrongKeyLen); return err }},
		{"signed DER key", ErrMalformed, func() error { _, err := DecodeSigned(derKey); return err }},
		{"key length past end", ErrMalformed, func() error { _, err := DecodeSigned(signed[:HeaderSize+2+10]); return err }},
		{"request truncated", ErrMalformed, func() error { _, err := DecodeIntroRequest(MsgIntroRequestOld, reqMsg.Payload[:20]); return err }},
		{"request wrong id", ErrMalformed, func() error { _, err := DecodeIntroRequest(MsgPuncture, reqMsg.Payload); return err }},
		{"puncture trailing byte", ErrMalformed, func() error {
			_, err := DecodePuncture(MsgPunctureOld, make([]byte, 15))
			return err
		}},
		{"ping trailing byte", ErrMalformed, func() error { _, err := DecodePing([]byte{1, 2, 3}); return err }},
		{"ip_address host name type", ErrMalformed, func() error { _, _, err := ReadIPAddress([]byte{2, 1, 2, 3, 4, 5, 6}); return err }},
		{"ip_address short ipv6", ErrMalformed, func() error { _, _, err := ReadIPAddress(make([]byte, 18)); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, tc.err) {
				t.Errorf("error = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestOldFormRejectsIPv6(t *testing.T) {
	r := IntroRequest{Destination: ap("[2001:db8::1]:1")}
	if _, err := r.Append(nil); !errors.Is(err, ErrNotIPv4) {
		t.Errorf("old request with IPv6 destination: error %v, want ErrNotIPv4", err)
	}
	r.NewStyle = true
	if _, err := r.Append(nil); err != nil {
		t.Errorf("new request with IPv6 destination: %v", err)
	}
}

func TestCommunityID(t *testing.T) {
	const s = "7e313685c1912a141279f8248fc8db5899c5df5a"
	c, err := ParseCommunityID(s)
	if err != nil || c.String() != s {
		t.Errorf("ParseCommunityID(%s) = %s, %v", s, c, err)
	}
	for _, bad := range []string{"", s[:39], s + "00", "zz" + s[2:]} {
		if _, err := ParseCommunityID(bad); err == nil {
			t.Errorf("ParseCommunityID(%q) accepted", bad)
		}
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestDecodeAllocs pins the decoders' allocation budget: none.
func TestDecodeAllocs(t *testing.T) {
	dgs := goldenDatagrams(t)
	req, _ := DecodeSigned(dgs["intro_request_new"])
	resp, _ := DecodeSigned(dgs["intro_response_old"])
	tests := []struct {
		name string
		f    func()
	}{
		{"DecodeSigned", func() { _, _ = DecodeSigned(dgs["intro_request_old"]) }},
		{"DecodeUnsigned", func() { _, _ = DecodeUnsigned(dgs["puncture_request_new"]) }},
		{"DecodeIntroRequest", func() { _, _ = DecodeIntroRequest(req.ID, req.Payload) }},
		{"DecodeIntroResponse", func() { _, _ = DecodeIntroResponse(resp.ID, resp.Payload) }},
	}
	for _, tc := range tests {
		if n := testing.AllocsPerRun(50, tc.f); n != 0 {
			t.Errorf("%s allocates %.1f times per call, want 0", tc.name, n)
		}
	}
}
