package ipv8

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Message is one decoded datagram.
//
// Payload (and nothing else) aliases the buffer the message was decoded
// from: a handler that keeps it past its return must copy it.
type Message struct {
	// From is the UDP address the datagram came from (set by the Endpoint).
	From netip.AddrPort
	// Community and ID are the header fields.
	Community CommunityID
	ID        byte
	// Signed tells the two framings apart. Key and Signature are set only
	// for signed messages; the Endpoint has verified the signature.
	Signed    bool
	Key       identity.PublicKey
	Signature [SignatureSize]byte
	// HasGlobalTime tells the framings with a global time from py-ipv8's
	// default ones; GlobalTime is the sender's Lamport clock, zero when
	// the message carries none.
	HasGlobalTime bool
	GlobalTime    uint64
	// Payload is the message body after the global time (and before the
	// signature).
	Payload []byte
}

// AppendSigned appends a signed message with a global time: header,
// uint16 key length, key, uint64 global time, payload, and kp's Ed25519
// signature over all of it (header included).
func AppendSigned(b []byte, kp *identity.KeyPair, c CommunityID, msgID byte, globalTime uint64, payload []byte) []byte {
	return AppendFramed(b, kp, c, msgID, FramingSigned, globalTime, payload)
}

// AppendUnsigned appends an unsigned message with a global time: header,
// uint64 global time, payload.
func AppendUnsigned(b []byte, c CommunityID, msgID byte, globalTime uint64, payload []byte) []byte {
	return AppendFramed(b, nil, c, msgID, FramingUnsigned, globalTime, payload)
}

// AppendFramed appends one message in framing f. kp signs signed
// framings and may be nil for unsigned ones; globalTime is written only
// by the framings that carry one.
func AppendFramed(b []byte, kp *identity.KeyPair, c CommunityID, msgID byte, f Framing, globalTime uint64, payload []byte) []byte {
	start := len(b)
	var pk *identity.PublicKey
	if f.Signed() {
		p := kp.Public()
		pk = &p
	}
	b = appendBody(b, pk, c, msgID, f.GlobalTime(), globalTime, payload)
	if !f.Signed() {
		return b
	}
	return kp.AppendSign(b, b[start:])
}

// appendBody appends everything but the signature; pk is nil for
// unsigned messages.
func appendBody(b []byte, pk *identity.PublicKey, c CommunityID, msgID byte, hasTime bool, globalTime uint64, payload []byte) []byte {
	b = AppendHeader(b, c, msgID)
	if pk != nil {
		b = binary.BigEndian.AppendUint16(b, uint16(len(pk)))
		b = append(b, pk[:]...)
	}
	if hasTime {
		b = binary.BigEndian.AppendUint64(b, globalTime)
	}
	return append(b, payload...)
}

// Framing returns the framing m was decoded in.
func (m *Message) Framing() Framing {
	switch {
	case m.Signed && m.HasGlobalTime:
		return FramingSigned
	case m.Signed:
		return FramingSignedNoTime
	case m.HasGlobalTime:
		return FramingUnsigned
	}
	return FramingUnsignedNoTime
}

// AppendMessage re-encodes m in its own framing. For a signed message it
// reuses m.Signature, so the result verifies only if m came from a valid
// datagram; it exists for tests and relays, not for signing.
func AppendMessage(b []byte, m *Message) []byte {
	var pk *identity.PublicKey
	if m.Signed {
		pk = &m.Key
	}
	b = appendBody(b, pk, m.Community, m.ID, m.HasGlobalTime, m.GlobalTime, m.Payload)
	if m.Signed {
		b = append(b, m.Signature[:]...)
	}
	return b
}

// Decode decodes datagram b in framing f, verifying the signature of the
// signed framings.
func Decode(b []byte, f Framing) (Message, error) {
	switch f {
	case FramingSigned, FramingSignedNoTime:
		m, err := parseSigned(b, f.GlobalTime())
		if err != nil {
			return m, err
		}
		if !m.Key.Verify(b[:len(b)-SignatureSize], m.Signature[:]) {
			return m, fmt.Errorf("%w: from key %s", ErrBadSignature, m.Key.PeerID().Short())
		}
		return m, nil
	case FramingUnsigned, FramingUnsignedNoTime:
		return parseUnsigned(b, f.GlobalTime())
	}
	return Message{}, fmt.Errorf("%w: unknown framing %d", ErrMalformed, f)
}

// DecodeSigned decodes a signed datagram with a global time and verifies
// its signature. Only curve25519 (74-byte LibNaCLPK) keys are accepted.
func DecodeSigned(b []byte) (Message, error) { return Decode(b, FramingSigned) }

// ParseSigned decodes the layout of a signed datagram with a global time
// without verifying the signature. Use DecodeSigned unless the signature
// was checked elsewhere.
func ParseSigned(b []byte) (Message, error) { return parseSigned(b, true) }

func parseSigned(b []byte, hasTime bool) (Message, error) {
	var m Message
	c, id, rest, err := ParseHeader(b)
	if err != nil {
		return m, err
	}
	m.Community, m.ID, m.Signed = c, id, true
	n, rest, err := readUint16(rest, "key length")
	if err != nil {
		return m, err
	}
	if int(n) > len(rest) {
		return m, fmt.Errorf("%w: key length %d, only %d bytes left", ErrMalformed, n, len(rest))
	}
	if m.Key, err = identity.ParsePublicKey(rest[:n]); err != nil {
		return m, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	rest = rest[n:]
	if hasTime {
		m.HasGlobalTime = true
		if m.GlobalTime, rest, err = readUint64(rest, "global time"); err != nil {
			return m, err
		}
	}
	if len(rest) < SignatureSize {
		return m, fmt.Errorf("%w: %d bytes left for payload and signature, want at least %d", ErrMalformed, len(rest), SignatureSize)
	}
	m.Payload = rest[:len(rest)-SignatureSize]
	copy(m.Signature[:], rest[len(rest)-SignatureSize:])
	return m, nil
}

// DecodeUnsigned decodes an unsigned datagram with a global time.
func DecodeUnsigned(b []byte) (Message, error) { return parseUnsigned(b, true) }

func parseUnsigned(b []byte, hasTime bool) (Message, error) {
	var m Message
	c, id, rest, err := ParseHeader(b)
	if err != nil {
		return m, err
	}
	m.Community, m.ID = c, id
	if hasTime {
		m.HasGlobalTime = true
		if m.GlobalTime, rest, err = readUint64(rest, "global time"); err != nil {
			return m, err
		}
	}
	m.Payload = rest
	return m, nil
}
