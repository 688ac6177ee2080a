package ipv8

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// PunctureRequest asks its receiver to send a puncture to a walker
// (250 old, 232 new; sent unsigned).
type PunctureRequest struct {
	// NewStyle selects message 232 (ip_address) over 250 (ipv4).
	NewStyle bool
	// LANWalker and WANWalker are the addresses of the peer that was
	// introduced to the receiver.
	LANWalker, WANWalker netip.AddrPort
	Identifier           uint16
}

// MsgID returns 232 or 250.
func (r *PunctureRequest) MsgID() byte {
	if r.NewStyle {
		return MsgPunctureRequest
	}
	return MsgPunctureRequestOld
}

// Append appends the payload.
func (r *PunctureRequest) Append(b []byte) ([]byte, error) {
	return appendAddrPair(b, r.NewStyle, r.LANWalker, r.WANWalker, r.Identifier, "puncture request")
}

// DecodePunctureRequest decodes the payload of message msgID (232 or 250).
func DecodePunctureRequest(msgID byte, p []byte) (PunctureRequest, error) {
	r := PunctureRequest{NewStyle: msgID == MsgPunctureRequest}
	if msgID != MsgPunctureRequest && msgID != MsgPunctureRequestOld {
		return r, fmt.Errorf("%w: message %d is not a puncture request", ErrMalformed, msgID)
	}
	var err error
	r.LANWalker, r.WANWalker, r.Identifier, err = decodeAddrPair(p, r.NewStyle, "puncture request")
	return r, err
}

// Puncture is the packet that opens the sender's NAT towards a walker
// (249 old, 231 new; signed).
type Puncture struct {
	// NewStyle selects message 231 (ip_address) over 249 (ipv4).
	NewStyle bool
	// SourceLAN and SourceWAN are the sender's addresses.
	SourceLAN, SourceWAN netip.AddrPort
	Identifier           uint16
}

// MsgID returns 231 or 249.
func (r *Puncture) MsgID() byte {
	if r.NewStyle {
		return MsgPuncture
	}
	return MsgPunctureOld
}

// Append appends the payload.
func (r *Puncture) Append(b []byte) ([]byte, error) {
	return appendAddrPair(b, r.NewStyle, r.SourceLAN, r.SourceWAN, r.Identifier, "puncture")
}

// DecodePuncture decodes the payload of message msgID (231 or 249).
func DecodePuncture(msgID byte, p []byte) (Puncture, error) {
	r := Puncture{NewStyle: msgID == MsgPuncture}
	if msgID != MsgPuncture && msgID != MsgPunctureOld {
		return r, fmt.Errorf("%w: message %d is not a puncture", ErrMalformed, msgID)
	}
	var err error
	r.SourceLAN, r.SourceWAN, r.Identifier, err = decodeAddrPair(p, r.NewStyle, "puncture")
	return r, err
}

func appendAddrPair(b []byte, newStyle bool, lan, wan netip.AddrPort, id uint16, what string) ([]byte, error) {
	if newStyle {
		b = AppendIPAddress(b, lan)
		b = AppendIPAddress(b, wan)
	} else {
		var err error
		if b, err = AppendIPv4(b, lan); err != nil {
			return b, fmt.Errorf("old %s: %w", what, err)
		}
		if b, err = AppendIPv4(b, wan); err != nil {
			return b, fmt.Errorf("old %s: %w", what, err)
		}
	}
	return binary.BigEndian.AppendUint16(b, id), nil
}

func decodeAddrPair(p []byte, newStyle bool, what string) (lan, wan netip.AddrPort, id uint16, err error) {
	read := ReadIPv4
	if newStyle {
		read = ReadIPAddress
	}
	if lan, p, err = read(p); err != nil {
		return lan, wan, 0, fmt.Errorf("%s: %w", what, err)
	}
	if wan, p, err = read(p); err != nil {
		return lan, wan, 0, fmt.Errorf("%s: %w", what, err)
	}
	if id, p, err = readUint16(p, what+" identifier"); err != nil {
		return lan, wan, 0, err
	}
	return lan, wan, id, noTrailing(p, what)
}

// Ping and pong (discovery community messages 3 and 4, unsigned) carry
// only an identifier.
type Ping struct {
	Identifier uint16
}

// Append appends the payload.
func (r *Ping) Append(b []byte) []byte { return binary.BigEndian.AppendUint16(b, r.Identifier) }

// DecodePing decodes a ping or pong payload.
func DecodePing(p []byte) (Ping, error) {
	id, rest, err := readUint16(p, "ping identifier")
	if err != nil {
		return Ping{}, err
	}
	return Ping{Identifier: id}, noTrailing(rest, "ping")
}
