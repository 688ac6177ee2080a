package ipv8

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Datagram framing constants.
const (
	// Magic is the first byte of every IPv8 datagram. QUIC always sets bit
	// 0x40 of its first byte, so the two never collide on one socket.
	Magic byte = 0x00
	// Version is the only datagram version spoken (py-ipv8's 0x02).
	Version byte = 0x02
	// PrefixSize is magic, version and community ID.
	PrefixSize = 2 + CommunityIDSize
	// HeaderSize is the prefix plus the message ID.
	HeaderSize = PrefixSize + 1
	// SignatureSize is the Ed25519 signature closing a signed message.
	SignatureSize = identity.SignatureSize
	// SignedOverhead is the size of a signed message with an empty payload
	// and a curve25519 (74-byte) key: 171 bytes.
	SignedOverhead = HeaderSize + 2 + identity.PublicKeySize + 8 + SignatureSize
	// UnsignedOverhead is the size of an unsigned message with an empty
	// payload: 31 bytes.
	UnsignedOverhead = HeaderSize + 8
	// MaxDatagramSize is the largest datagram sent or accepted. IPv8 does
	// not fragment; staying under the common 1,500-byte MTU keeps it so.
	MaxDatagramSize = 1400
	// CommunityIDSize is the length of a community ID.
	CommunityIDSize = 20
)

// Errors. Every decoding failure wraps ErrMalformed; a signature that does
// not verify is ErrBadSignature. Both mean "this peer sent bad data".
var (
	ErrMalformed    = errors.New("ipv8: malformed datagram")
	ErrBadSignature = errors.New("ipv8: bad signature")
	ErrTooLarge     = errors.New("ipv8: datagram too large")
	ErrNotIPv4      = errors.New("ipv8: address is not IPv4")
)

// CommunityID names a community: 20 bytes, in py-ipv8 the SHA-1 of the
// community's master key.
type CommunityID [CommunityIDSize]byte

// String returns 40 lowercase hex digits.
func (c CommunityID) String() string { return hex.EncodeToString(c[:]) }

// ParseCommunityID parses 40 hex digits.
func ParseCommunityID(s string) (CommunityID, error) {
	var c CommunityID
	if len(s) != 2*CommunityIDSize {
		return c, fmt.Errorf("ipv8: community ID %q: %d characters, want 40 hex digits", s, len(s))
	}
	if _, err := hex.Decode(c[:], []byte(s)); err != nil {
		return c, fmt.Errorf("ipv8: community ID %q: %w", s, err)
	}
	return c, nil
}

// MustCommunityID is ParseCommunityID for constants; it panics on a bad
// string.
func MustCommunityID(s string) CommunityID {
	c, err := ParseCommunityID(s)
	if err != nil {
		panic(err)
	}
	return c
}

// AppendHeader appends magic, version, community ID and message ID.
func AppendHeader(b []byte, c CommunityID, msgID byte) []byte {
	b = append(b, Magic, Version)
	b = append(b, c[:]...)
	return append(b, msgID)
}

// ParseHeader returns the community and message ID of datagram b and the
// bytes after the header.
func ParseHeader(b []byte) (c CommunityID, msgID byte, body []byte, err error) {
	if len(b) < HeaderSize {
		return c, 0, nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrMalformed, len(b), HeaderSize)
	}
	if b[0] != Magic {
		return c, 0, nil, fmt.Errorf("%w: first byte %#02x, want 0x00", ErrMalformed, b[0])
	}
	if b[1] != Version {
		return c, 0, nil, fmt.Errorf("%w: version %#02x, want 0x02", ErrMalformed, b[1])
	}
	copy(c[:], b[2:PrefixSize])
	return c, b[PrefixSize], b[HeaderSize:], nil
}

func readUint16(b []byte, what string) (uint16, []byte, error) {
	if len(b) < 2 {
		return 0, nil, fmt.Errorf("%w: %s: %d bytes left, want 2", ErrMalformed, what, len(b))
	}
	return binary.BigEndian.Uint16(b), b[2:], nil
}

func readUint64(b []byte, what string) (uint64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, fmt.Errorf("%w: %s: %d bytes left, want 8", ErrMalformed, what, len(b))
	}
	return binary.BigEndian.Uint64(b), b[8:], nil
}

func readByte(b []byte, what string) (byte, []byte, error) {
	if len(b) < 1 {
		return 0, nil, fmt.Errorf("%w: %s: no bytes left", ErrMalformed, what)
	}
	return b[0], b[1:], nil
}

func noTrailing(b []byte, what string) error {
	if len(b) != 0 {
		return fmt.Errorf("%w: %s: %d trailing bytes", ErrMalformed, what, len(b))
	}
	return nil
}
