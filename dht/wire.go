package dht

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

const (
	// Version is the wire version byte.
	Version = 0x01
	// MaxMessageSize is the largest DHT payload: an IPv8 datagram of about
	// 1,400 bytes minus the 171-byte signed-message framing.
	MaxMessageSize = 1200
	headerSize     = 6
	// MaxTokenSize is the longest token a node may hand out.
	MaxTokenSize = 32
)

// MsgType names a message.
type MsgType uint8

// Message types.
const (
	MsgPing MsgType = 1 + iota
	MsgPong
	MsgFindNode
	MsgNodes
	MsgGetProviders
	MsgProviders
	MsgAddProvider
	MsgAddProviderAck
)

var msgNames = [...]string{"invalid", "ping", "pong", "find node", "nodes", "get providers", "providers", "add provider", "add provider ack"}

func (t MsgType) String() string {
	if int(t) < len(msgNames) {
		return msgNames[t]
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// isRequest reports whether t asks for a reply.
func (t MsgType) isRequest() bool {
	return t == MsgPing || t == MsgFindNode || t == MsgGetProviders || t == MsgAddProvider
}

// Ack statuses of an add provider.
const (
	AckStored uint8 = iota
	AckBadToken
	AckBadSignature
	AckForeignRecord
	AckBadExpiry
	AckFull
	numAcks
)

// Message is one decoded DHT message. Which fields are used depends on Type
// (see the package doc); the others are zero.
type Message struct {
	Type     MsgType
	TxID     uint32
	Target   Key            // find node, get providers
	Skip     uint16         // get providers: records to skip (a later page); 0: the first page
	Observed netip.AddrPort // pong
	Token    []byte         // providers, add provider
	Records  []Record       // providers; add provider carries exactly one
	Contacts []Contact      // nodes, providers
	Status   uint8          // add provider ack
}

// Append appends the encoding of m. It does not check sizes: builders in
// this package keep every message within MaxMessageSize.
func (m Message) Append(b []byte) []byte {
	b = append(b, Version, byte(m.Type))
	b = binary.BigEndian.AppendUint32(b, m.TxID)
	switch m.Type {
	case MsgPong:
		b = appendAddr(b, m.Observed)
	case MsgFindNode:
		b = append(b, m.Target[:]...)
	case MsgGetProviders:
		b = append(b, m.Target[:]...)
		if m.Skip > 0 {
			b = binary.BigEndian.AppendUint16(b, m.Skip)
		}
	case MsgNodes:
		b = appendContacts(b, m.Contacts)
	case MsgProviders:
		b = append(b, byte(len(m.Token)))
		b = append(b, m.Token...)
		b = append(b, byte(len(m.Records)))
		for i := range m.Records {
			b = m.Records[i].Append(b)
		}
		b = appendContacts(b, m.Contacts)
	case MsgAddProvider:
		b = append(b, byte(len(m.Token)))
		b = append(b, m.Token...)
		if len(m.Records) > 0 {
			b = m.Records[0].Append(b)
		}
	case MsgAddProviderAck:
		b = append(b, m.Status)
	}
	return b
}

func appendContacts(b []byte, cs []Contact) []byte {
	b = append(b, byte(len(cs)))
	for _, c := range cs {
		b = appendContact(b, c)
	}
	return b
}

// DecodeMessage decodes one message, checking every length and rejecting
// trailing bytes. Errors wrap ErrTooLarge, ErrVersion or ErrMalformed.
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxMessageSize {
		return m, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(b), MaxMessageSize)
	}
	if len(b) < headerSize {
		return m, fmt.Errorf("%w: %d bytes, header is %d", ErrMalformed, len(b), headerSize)
	}
	if b[0] != Version {
		return m, fmt.Errorf("%w: %#02x", ErrVersion, b[0])
	}
	m.Type = MsgType(b[1])
	m.TxID = binary.BigEndian.Uint32(b[2:6])
	b = b[headerSize:]
	var err error
	switch m.Type {
	case MsgPing:
	case MsgPong:
		m.Observed, b, err = readAddr(b)
	case MsgFindNode, MsgGetProviders:
		if len(b) < 32 {
			return m, fmt.Errorf("%w: %s target: truncated", ErrMalformed, m.Type)
		}
		m.Target, b = Key(b[:32]), b[32:]
		if m.Type == MsgGetProviders && len(b) == 2 {
			if m.Skip, b = binary.BigEndian.Uint16(b), b[2:]; m.Skip == 0 {
				return m, fmt.Errorf("%w: get providers: a zero skip is not written", ErrMalformed)
			}
		}
	case MsgNodes:
		m.Contacts, b, err = readContacts(b)
	case MsgProviders:
		if m.Token, b, err = readToken(b); err != nil {
			break
		}
		if len(b) < 1 {
			err = fmt.Errorf("%w: record count: truncated", ErrMalformed)
			break
		}
		n := int(b[0])
		b = b[1:]
		if n*recordFixed > len(b) {
			err = fmt.Errorf("%w: %d records in %d bytes", ErrMalformed, n, len(b))
			break
		}
		if n > 0 {
			m.Records = make([]Record, n)
		}
		for i := range m.Records {
			if m.Records[i], b, err = readRecord(b); err != nil {
				break
			}
		}
		if err == nil {
			m.Contacts, b, err = readContacts(b)
		}
	case MsgAddProvider:
		if m.Token, b, err = readToken(b); err != nil {
			break
		}
		var r Record
		if r, b, err = readRecord(b); err == nil {
			m.Records = []Record{r}
		}
	case MsgAddProviderAck:
		if len(b) < 1 {
			return m, fmt.Errorf("%w: ack status: truncated", ErrMalformed)
		}
		m.Status, b = b[0], b[1:]
		if m.Status >= numAcks {
			return m, fmt.Errorf("%w: ack status %d", ErrMalformed, m.Status)
		}
	default:
		return m, fmt.Errorf("%w: unknown type %d", ErrMalformed, uint8(m.Type))
	}
	if err != nil {
		return m, fmt.Errorf("%s: %w", m.Type, err)
	}
	if len(b) != 0 {
		return m, fmt.Errorf("%w: %s: %d trailing bytes", ErrMalformed, m.Type, len(b))
	}
	return m, nil
}

func readToken(b []byte) ([]byte, []byte, error) {
	if len(b) < 1 {
		return nil, nil, fmt.Errorf("%w: token length: truncated", ErrMalformed)
	}
	n := int(b[0])
	if n > MaxTokenSize || len(b) < 1+n {
		return nil, nil, fmt.Errorf("%w: token of %d bytes in %d", ErrMalformed, n, len(b)-1)
	}
	var t []byte
	if n > 0 {
		t = append([]byte(nil), b[1:1+n]...)
	}
	return t, b[1+n:], nil
}

// How the DHT rides IPv8: every DHT message is the payload of a signed IPv8
// message with message ID IPv8MessageID in the community CommunityID
// (SHA-1 of "shoal dht community v1").
var CommunityID = [20]byte{0x1e, 0xe5, 0xfb, 0x2d, 0x62, 0x5f, 0xe1, 0x47, 0xc0, 0x08,
	0xe4, 0x5d, 0xfc, 0xcd, 0xb6, 0x3e, 0xdf, 0x04, 0x6f, 0x9e}

// IPv8MessageID is the IPv8 message ID carrying DHT payloads.
const IPv8MessageID = 1
