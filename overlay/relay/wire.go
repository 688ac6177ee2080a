package relay

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Magic is the first byte of every relay frame.
const Magic = 0x3c

// Frame types.
const (
	TypeHello      = 0x01
	TypeCookie     = 0x02
	TypeRegister   = 0x03
	TypeRegistered = 0x04
	TypeConnect    = 0x05
	TypeSession    = 0x06
	TypeData       = 0x07
	TypeRefused    = 0x08
)

// Refusal reasons.
const (
	ReasonUnknownTarget = 1 // the target is not registered here
	ReasonFull          = 2 // a cap on sessions was reached
	ReasonNotRegistered = 3 // the sender is not registered
	ReasonBudget        = 4 // the session spent its byte budget
)

// Sizes.
const (
	CookieSize = 16
	headerSize = 2
	dataHeader = headerSize + 4
	// MaxPayload is the largest QUIC packet a data frame carries: quic-go
	// sends at most 1452 bytes, and 1452 + 6 stays within a 1500-byte MTU.
	MaxPayload = 1452
	// MaxFrameSize is the largest frame.
	MaxFrameSize = dataHeader + MaxPayload
	helloPad     = CookieSize
	sigSize      = 64
)

// ErrMalformed reports a frame that does not decode.
var ErrMalformed = errors.New("relay: malformed frame")

// Frame is one decoded frame; which fields are set depends on Type.
type Frame struct {
	Type     byte
	Cookie   [CookieSize]byte   // cookie, register
	Key      identity.PublicKey // register
	Sig      [sigSize]byte      // register
	Lifetime uint16             // registered, in seconds
	Target   identity.PeerID    // connect, session, refused
	Session  uint32             // session, data
	Reason   byte               // refused
	Payload  []byte             // data; aliases the decoded buffer
}

// IsFrame reports whether b starts like a relay frame.
func IsFrame(b []byte) bool { return len(b) >= headerSize && b[0] == Magic }

// Append appends f's encoding to b.
func (f *Frame) Append(b []byte) ([]byte, error) {
	b = append(b, Magic, f.Type)
	switch f.Type {
	case TypeHello:
		b = append(b, make([]byte, helloPad)...)
	case TypeCookie:
		b = append(b, f.Cookie[:]...)
	case TypeRegister:
		b = append(b, f.Cookie[:]...)
		b = append(b, f.Key[:]...)
		b = append(b, f.Sig[:]...)
	case TypeRegistered:
		b = binary.BigEndian.AppendUint16(b, f.Lifetime)
	case TypeConnect:
		b = append(b, f.Target[:]...)
	case TypeSession:
		b = binary.BigEndian.AppendUint32(b, f.Session)
		b = append(b, f.Target[:]...)
	case TypeData:
		if len(f.Payload) == 0 || len(f.Payload) > MaxPayload {
			return nil, fmt.Errorf("relay: data payload of %d bytes, want 1..%d", len(f.Payload), MaxPayload)
		}
		b = binary.BigEndian.AppendUint32(b, f.Session)
		b = append(b, f.Payload...)
	case TypeRefused:
		b = append(b, f.Reason)
		b = append(b, f.Target[:]...)
	default:
		return nil, fmt.Errorf("relay: unknown frame type %#x", f.Type)
	}
	return b, nil
}

// bodySize is the exact body size of each fixed-size type.
var bodySize = map[byte]int{
	TypeHello:      helloPad,
	TypeCookie:     CookieSize,
	TypeRegister:   CookieSize + identity.PublicKeySize + sigSize,
	TypeRegistered: 2,
	TypeConnect:    32,
	TypeSession:    4 + 32,
	TypeRefused:    1 + 32,
}

// Decode decodes one frame. Payload aliases b.
func Decode(b []byte) (Frame, error) {
	var f Frame
	if len(b) < headerSize || b[0] != Magic {
		return f, fmt.Errorf("%w: no relay header", ErrMalformed)
	}
	if len(b) > MaxFrameSize {
		return f, fmt.Errorf("%w: %d bytes, max %d", ErrMalformed, len(b), MaxFrameSize)
	}
	f.Type = b[1]
	body := b[headerSize:]
	if f.Type == TypeData {
		if len(body) < 5 {
			return f, fmt.Errorf("%w: data frame of %d bytes", ErrMalformed, len(b))
		}
		f.Session = binary.BigEndian.Uint32(body)
		f.Payload = body[4:]
		return f, nil
	}
	want, ok := bodySize[f.Type]
	if !ok {
		return f, fmt.Errorf("%w: unknown type %#x", ErrMalformed, f.Type)
	}
	if len(body) != want {
		return f, fmt.Errorf("%w: type %#x with %d body bytes, want %d", ErrMalformed, f.Type, len(body), want)
	}
	switch f.Type {
	case TypeCookie:
		copy(f.Cookie[:], body)
	case TypeRegister:
		copy(f.Cookie[:], body)
		copy(f.Key[:], body[CookieSize:])
		copy(f.Sig[:], body[CookieSize+identity.PublicKeySize:])
	case TypeRegistered:
		f.Lifetime = binary.BigEndian.Uint16(body)
	case TypeConnect:
		copy(f.Target[:], body)
	case TypeSession:
		f.Session = binary.BigEndian.Uint32(body)
		copy(f.Target[:], body[4:])
	case TypeRefused:
		f.Reason = body[0]
		copy(f.Target[:], body[1:])
	}
	return f, nil
}

// registerMessage is what a register frame's signature covers.
func registerMessage(cookie [CookieSize]byte) []byte {
	return append([]byte("shoal relay register v1"), cookie[:]...)
}
