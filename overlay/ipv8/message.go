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
	// GlobalTime is the sender's Lamport clock.
	GlobalTime uint64
	// Payload is the message body after the global time (and before the
	// signature).
	Payload []byte
}

// AppendSigned appends a signed message: header, uint16 key length, key,
// uint64 global time, payload, and kp's Ed25519 signature over all of it
// (header included).
func AppendSigned(b []byte, kp *identity.KeyPair, c CommunityID, msgID byte, globalTime uint64, payload []byte) []byte {
	start := len(b)
	pk := kp.Public()
	b = appendSignedBody(b, pk, c, msgID, globalTime, payload)
	return kp.AppendSign(b, b[start:])
}

func appendSignedBody(b []byte, pk identity.PublicKey, c CommunityID, msgID byte, globalTime uint64, payload []byte) []byte {
	b = AppendHeader(b, c, msgID)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pk)))
	b = append(b, pk[:]...)
	b = binary.BigEndian.AppendUint64(b, globalTime)
	return append(b, payload...)
}

// AppendUnsigned appends an unsigned message: header, uint64 global time,
// payload.
func AppendUnsigned(b []byte, c CommunityID, msgID byte, globalTime uint64, payload []byte) []byte {
	b = AppendHeader(b, c, msgID)
	b = binary.BigEndian.AppendUint64(b, globalTime)
	return append(b, payload...)
}

// AppendMessage re-encodes m in its own framing. For a signed message it
// reuses m.Signature, so the result verifies only if m came from a valid
// datagram; it exists for tests and relays, not for signing.
func AppendMessage(b []byte, m *Message) []byte {
	if !m.Signed {
		return AppendUnsigned(b, m.Community, m.ID, m.GlobalTime, m.Payload)
	}
	b = appendSignedBody(b, m.Key, m.Community, m.ID, m.GlobalTime, m.Payload)
	return append(b, m.Signature[:]...)
}

// DecodeSigned decodes a signed datagram and verifies its signature. Only
// curve25519 (74-byte LibNaCLPK) keys are accepted.
func DecodeSigned(b []byte) (Message, error) {
	m, err := ParseSigned(b)
	if err != nil {
		return m, err
	}
	if !m.Key.Verify(b[:len(b)-SignatureSize], m.Signature[:]) {
		return m, fmt.Errorf("%w: from key %s", ErrBadSignature, m.Key.PeerID().Short())
	}
	return m, nil
}

// ParseSigned decodes the layout of a signed datagram without verifying
// the signature. Use DecodeSigned unless the signature was checked
// elsewhere.
func ParseSigned(b []byte) (Message, error) {
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
	if m.GlobalTime, rest, err = readUint64(rest, "global time"); err != nil {
		return m, err
	}
	if len(rest) < SignatureSize {
		return m, fmt.Errorf("%w: %d bytes left for payload and signature, want at least %d", ErrMalformed, len(rest), SignatureSize)
	}
	m.Payload = rest[:len(rest)-SignatureSize]
	copy(m.Signature[:], rest[len(rest)-SignatureSize:])
	return m, nil
}

// DecodeUnsigned decodes an unsigned datagram.
func DecodeUnsigned(b []byte) (Message, error) {
	var m Message
	c, id, rest, err := ParseHeader(b)
	if err != nil {
		return m, err
	}
	m.Community, m.ID = c, id
	if m.GlobalTime, rest, err = readUint64(rest, "global time"); err != nil {
		return m, err
	}
	m.Payload = rest
	return m, nil
}
