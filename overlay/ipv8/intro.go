package ipv8

import (
	"fmt"
	"net/netip"
)

// Message IDs of py-ipv8's discovery messages, which every community
// answers, and of the discovery community's ping and pong.
const (
	MsgIntroRequestOld    byte = 246 // ipv4 addresses, signed
	MsgIntroResponseOld   byte = 245 // ipv4 addresses, signed
	MsgPunctureRequestOld byte = 250 // ipv4 addresses, unsigned
	MsgPunctureOld        byte = 249 // ipv4 addresses, signed
	MsgIntroRequest       byte = 234 // ip_address, signed
	MsgIntroResponse      byte = 233 // ip_address, signed
	MsgPunctureRequest    byte = 232 // ip_address, unsigned
	MsgPuncture           byte = 231 // ip_address, signed
	MsgPing               byte = 3   // discovery community only, unsigned
	MsgPong               byte = 4   // discovery community only, unsigned
)

// ConnType is IPv8's connection type, two bits on the wire.
type ConnType uint8

// Connection types. The bit pair 01, which py-ipv8 never sends, decodes
// as ConnUnknown.
const (
	ConnUnknown      ConnType = 0 // bits 00
	ConnPublic       ConnType = 1 // bits 10
	ConnSymmetricNAT ConnType = 2 // bits 11
)

func (t ConnType) bits() byte {
	switch t {
	case ConnPublic:
		return 0x80
	case ConnSymmetricNAT:
		return 0xC0
	}
	return 0
}

func connTypeOf(bits byte) ConnType {
	switch bits & 0xC0 {
	case 0x80:
		return ConnPublic
	case 0xC0:
		return ConnSymmetricNAT
	}
	return ConnUnknown
}

// Flag bits of the introduction request (both forms), most significant
// first: connection type (2 bits), supports-new-style, two unused dispersy
// flags, tunnel, sync, advice.
const (
	reqSupportsNewStyle byte = 0x20
	reqAdvice           byte = 0x01
)

// Flag bits of the old introduction response: connection type (2 bits),
// unused, supports-new-style, intro-supports-new-style,
// peer-limit-reached, two unused.
const (
	respOldSupportsNewStyle      byte = 0x10
	respOldIntroSupportsNewStyle byte = 0x08
	respOldPeerLimit             byte = 0x04
)

// Flag bits of the new introduction response: py-ipv8 defines only the
// first (intro-supports-new-style). shoal puts peer-limit-reached in the
// second; py-ipv8 ignores it.
const (
	respNewIntroSupportsNewStyle byte = 0x80
	respNewPeerLimit             byte = 0x40
)

// IntroRequest is an introduction request (246 old, 234 new).
type IntroRequest struct {
	// NewStyle selects message 234 (ip_address encodings) over 246 (ipv4).
	NewStyle bool
	// Destination is the receiver's address as the sender sees it;
	// SourceLAN and SourceWAN are the sender's own addresses.
	Destination, SourceLAN, SourceWAN netip.AddrPort
	ConnType                          ConnType
	// SupportsNewStyle is a flag of the old form; a new-form request
	// implies it and decodes with it set.
	SupportsNewStyle bool
	// Advice asks the receiver to introduce another peer. py-ipv8 always
	// sets it and inverts it when decoding; shoal always introduces.
	Advice bool
	// Identifier is echoed in the response.
	Identifier uint16
	// Extra is raw bytes to the end of the payload (nil when none).
	Extra []byte
}

// MsgID returns 234 or 246.
func (r *IntroRequest) MsgID() byte {
	if r.NewStyle {
		return MsgIntroRequest
	}
	return MsgIntroRequestOld
}

func (r *IntroRequest) flags() byte {
	f := r.ConnType.bits()
	if r.SupportsNewStyle || r.NewStyle {
		f |= reqSupportsNewStyle
	}
	if r.Advice {
		f |= reqAdvice
	}
	return f
}

// Append appends the payload. Old-form requests with an IPv6 address
// fail with ErrNotIPv4.
func (r *IntroRequest) Append(b []byte) ([]byte, error) {
	if r.NewStyle {
		b = AppendIPAddress(b, r.Destination)
		b = AppendIPAddress(b, r.SourceLAN)
		b = AppendIPAddress(b, r.SourceWAN)
		b = append(b, byte(r.Identifier>>8), byte(r.Identifier), r.flags())
		return append(b, r.Extra...), nil
	}
	var err error
	for _, a := range []netip.AddrPort{r.Destination, r.SourceLAN, r.SourceWAN} {
		if b, err = AppendIPv4(b, a); err != nil {
			return b, fmt.Errorf("old introduction request: %w", err)
		}
	}
	b = append(b, r.flags(), byte(r.Identifier>>8), byte(r.Identifier))
	return append(b, r.Extra...), nil
}

// DecodeIntroRequest decodes the payload of message msgID (234 or 246).
// Extra aliases p.
func DecodeIntroRequest(msgID byte, p []byte) (IntroRequest, error) {
	var r IntroRequest
	var err error
	var flags byte
	switch msgID {
	case MsgIntroRequest:
		r.NewStyle = true
		for _, a := range []*netip.AddrPort{&r.Destination, &r.SourceLAN, &r.SourceWAN} {
			if *a, p, err = ReadIPAddress(p); err != nil {
				return r, fmt.Errorf("introduction request: %w", err)
			}
		}
		if r.Identifier, p, err = readUint16(p, "introduction request identifier"); err != nil {
			return r, err
		}
		if flags, p, err = readByte(p, "introduction request flags"); err != nil {
			return r, err
		}
	case MsgIntroRequestOld:
		for _, a := range []*netip.AddrPort{&r.Destination, &r.SourceLAN, &r.SourceWAN} {
			if *a, p, err = ReadIPv4(p); err != nil {
				return r, fmt.Errorf("introduction request: %w", err)
			}
		}
		if flags, p, err = readByte(p, "introduction request flags"); err != nil {
			return r, err
		}
		if r.Identifier, p, err = readUint16(p, "introduction request identifier"); err != nil {
			return r, err
		}
	default:
		return r, fmt.Errorf("%w: message %d is not an introduction request", ErrMalformed, msgID)
	}
	r.ConnType = connTypeOf(flags)
	r.SupportsNewStyle = r.NewStyle || flags&reqSupportsNewStyle != 0
	r.Advice = flags&reqAdvice != 0
	r.Extra = rawTail(p)
	return r, nil
}

// IntroResponse is an introduction response (245 old, 233 new).
type IntroResponse struct {
	// NewStyle selects message 233 (ip_address encodings) over 245 (ipv4).
	NewStyle bool
	// Destination is the requester's address as the responder saw it (the
	// requester learns its WAN address from it). SourceLAN and SourceWAN
	// are the responder's addresses; IntroLAN and IntroWAN those of the
	// introduced peer, zero when none.
	Destination, SourceLAN, SourceWAN, IntroLAN, IntroWAN netip.AddrPort
	// ConnType is carried by the old form only.
	ConnType ConnType
	// SupportsNewStyle is a flag of the old form; the new form implies it.
	SupportsNewStyle bool
	// IntroSupportsNewStyle says the introduced peer speaks the new form.
	IntroSupportsNewStyle bool
	// PeerLimitReached says the responder is full and did not add the
	// requester as a peer.
	PeerLimitReached bool
	// Identifier echoes the request's.
	Identifier uint16
	// Extra is raw bytes to the end of the payload (nil when none).
	Extra []byte
}

// MsgID returns 233 or 245.
func (r *IntroResponse) MsgID() byte {
	if r.NewStyle {
		return MsgIntroResponse
	}
	return MsgIntroResponseOld
}

// Append appends the payload. Old-form responses with an IPv6 address
// fail with ErrNotIPv4.
func (r *IntroResponse) Append(b []byte) ([]byte, error) {
	addrs := []netip.AddrPort{r.Destination, r.SourceLAN, r.SourceWAN, r.IntroLAN, r.IntroWAN}
	if r.NewStyle {
		for _, a := range addrs {
			b = AppendIPAddress(b, a)
		}
		var f byte
		if r.IntroSupportsNewStyle {
			f |= respNewIntroSupportsNewStyle
		}
		if r.PeerLimitReached {
			f |= respNewPeerLimit
		}
		b = append(b, byte(r.Identifier>>8), byte(r.Identifier), f)
		return append(b, r.Extra...), nil
	}
	var err error
	for _, a := range addrs {
		if b, err = AppendIPv4(b, a); err != nil {
			return b, fmt.Errorf("old introduction response: %w", err)
		}
	}
	f := r.ConnType.bits()
	if r.SupportsNewStyle {
		f |= respOldSupportsNewStyle
	}
	if r.IntroSupportsNewStyle {
		f |= respOldIntroSupportsNewStyle
	}
	if r.PeerLimitReached {
		f |= respOldPeerLimit
	}
	b = append(b, f, byte(r.Identifier>>8), byte(r.Identifier))
	return append(b, r.Extra...), nil
}

// DecodeIntroResponse decodes the payload of message msgID (233 or 245).
// Extra aliases p.
func DecodeIntroResponse(msgID byte, p []byte) (IntroResponse, error) {
	var r IntroResponse
	var err error
	var f byte
	addrs := []*netip.AddrPort{&r.Destination, &r.SourceLAN, &r.SourceWAN, &r.IntroLAN, &r.IntroWAN}
	switch msgID {
	case MsgIntroResponse:
		r.NewStyle = true
		for _, a := range addrs {
			if *a, p, err = ReadIPAddress(p); err != nil {
				return r, fmt.Errorf("introduction response: %w", err)
			}
		}
		if r.Identifier, p, err = readUint16(p, "introduction response identifier"); err != nil {
			return r, err
		}
		if f, p, err = readByte(p, "introduction response flags"); err != nil {
			return r, err
		}
		r.SupportsNewStyle = true
		r.IntroSupportsNewStyle = f&respNewIntroSupportsNewStyle != 0
		r.PeerLimitReached = f&respNewPeerLimit != 0
	case MsgIntroResponseOld:
		for _, a := range addrs {
			if *a, p, err = ReadIPv4(p); err != nil {
				return r, fmt.Errorf("introduction response: %w", err)
			}
		}
		if f, p, err = readByte(p, "introduction response flags"); err != nil {
			return r, err
		}
		if r.Identifier, p, err = readUint16(p, "introduction response identifier"); err != nil {
			return r, err
		}
		r.ConnType = connTypeOf(f)
		r.SupportsNewStyle = f&respOldSupportsNewStyle != 0
		r.IntroSupportsNewStyle = f&respOldIntroSupportsNewStyle != 0
		r.PeerLimitReached = f&respOldPeerLimit != 0
	default:
		return r, fmt.Errorf("%w: message %d is not an introduction response", ErrMalformed, msgID)
	}
	r.Extra = rawTail(p)
	return r, nil
}

func rawTail(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	return p
}
