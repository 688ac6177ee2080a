package swarm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Version is the protocol version byte that starts every request.
const Version = 1

// Wire limits. Every length read from a peer is checked against one of these
// (or against the verified manifest) before anything is allocated.
const (
	// MaxChunks bounds the chunk count of a hello bitmap (chunker.MaxChunks).
	MaxChunks = 1 << 22
	// MaxHaveBatch bounds the indexes of one have message.
	MaxHaveBatch = 4096
	// MaxReason bounds the reason text of an error response.
	MaxReason = 255
	// MaxManifestSize bounds a manifest response (chunker.MaxManifestSize).
	MaxManifestSize = 8 << 20
	// MaxChunkSize bounds a chunk response (chunker.MaxChunkSize).
	MaxChunkSize = 4 << 20

	requestHeaderLen  = 2 + 32
	chunkRequestLen   = requestHeaderLen + 4
	responseHeaderLen = 1 + 4
	msgHeaderLen      = 1 + 4
	maxHelloBody      = 1 + 4 + MaxChunks/8
	maxHaveBody       = 4 * MaxHaveBatch
)

// Kind says what a stream is for; it is the second byte of every request.
type Kind uint8

// Request kinds.
const (
	KindSession  Kind = 1 // a control stream: hello, then have updates both ways
	KindManifest Kind = 2 // fetch the manifest bytes
	KindLeaves   Kind = 3 // fetch the leaf layer (32 bytes per chunk)
	KindChunk    Kind = 4 // fetch one chunk
)

func (k Kind) String() string {
	switch k {
	case KindSession:
		return "session"
	case KindManifest:
		return "manifest"
	case KindLeaves:
		return "leaves"
	case KindChunk:
		return "chunk"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Status is the first byte of every response.
type Status uint8

// Response statuses. Every status but StatusOK is followed by a short reason.
const (
	StatusOK         Status = 0
	StatusNotFound   Status = 1 // the content is unknown to the server
	StatusBusy       Status = 2 // too many requests; retry later or elsewhere
	StatusBadRequest Status = 3 // malformed request or index out of range
	StatusNotHave    Status = 4 // the server does not hold that chunk (yet)
	StatusInternal   Status = 5 // the server failed to read its own data
	StatusElsewhere  Status = 6 // held, but fetch it from other peers first (super-seeding)
	maxStatus               = StatusElsewhere
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotFound:
		return "not found"
	case StatusBusy:
		return "busy"
	case StatusBadRequest:
		return "bad request"
	case StatusNotHave:
		return "not have"
	case StatusInternal:
		return "internal error"
	case StatusElsewhere:
		return "elsewhere"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Stream reset codes (QUIC application error codes on a stream).
const (
	CodeCancelled = 0x5301 // the requester no longer wants the answer
	CodeClosing   = 0x5302 // the sender is shutting down
	CodeProtocol  = 0x5303 // the peer broke the protocol
)

// Request opens every stream.
type Request struct {
	Kind  Kind
	ID    [32]byte // content ID
	Index uint32   // chunk index, KindChunk only
}

// AppendRequest appends the encoding of r.
func AppendRequest(b []byte, r Request) []byte {
	b = append(b, Version, byte(r.Kind))
	b = append(b, r.ID[:]...)
	if r.Kind == KindChunk {
		b = binary.BigEndian.AppendUint32(b, r.Index)
	}
	return b
}

// DecodeRequest parses a whole request; trailing bytes are an error.
func DecodeRequest(b []byte) (Request, error) {
	r, n, err := parseRequestHeader(b)
	if err != nil {
		return Request{}, err
	}
	if len(b) != n {
		return Request{}, fmt.Errorf("%w: %s request of %d bytes, want %d", ErrProtocol, r.Kind, len(b), n)
	}
	if r.Kind == KindChunk {
		r.Index = binary.BigEndian.Uint32(b[requestHeaderLen:])
	}
	return r, nil
}

// parseRequestHeader checks version and kind of the first requestHeaderLen
// bytes and returns the request's full length.
func parseRequestHeader(b []byte) (Request, int, error) {
	var r Request
	if len(b) < 2 {
		return r, 0, fmt.Errorf("%w: request of %d bytes", ErrProtocol, len(b))
	}
	if b[0] != Version {
		return r, 0, fmt.Errorf("%w: version %d, want %d", ErrVersion, b[0], Version)
	}
	r.Kind = Kind(b[1])
	n := requestHeaderLen
	switch r.Kind {
	case KindSession, KindManifest, KindLeaves:
	case KindChunk:
		n = chunkRequestLen
	default:
		return r, 0, fmt.Errorf("%w: unknown request kind %d", ErrProtocol, b[1])
	}
	if len(b) < requestHeaderLen {
		return r, 0, fmt.Errorf("%w: request of %d bytes", ErrProtocol, len(b))
	}
	copy(r.ID[:], b[2:requestHeaderLen])
	return r, n, nil
}

// ReadRequest reads one request from r without reading past it.
func ReadRequest(r io.Reader) (Request, error) {
	var buf [chunkRequestLen]byte
	if _, err := io.ReadFull(r, buf[:requestHeaderLen]); err != nil {
		return Request{}, fmt.Errorf("reading request: %w", err)
	}
	_, n, err := parseRequestHeader(buf[:requestHeaderLen])
	if err != nil {
		return Request{}, err
	}
	if _, err := io.ReadFull(r, buf[requestHeaderLen:n]); err != nil {
		return Request{}, fmt.Errorf("reading request: %w", err)
	}
	return DecodeRequest(buf[:n])
}

// AppendResponseHeader appends a status and payload length.
func AppendResponseHeader(b []byte, s Status, n uint32) []byte {
	b = append(b, byte(s))
	return binary.BigEndian.AppendUint32(b, n)
}

// AppendError appends a whole error response: status and reason, the reason
// cut to MaxReason bytes of valid UTF-8.
func AppendError(b []byte, s Status, reason string) []byte {
	if len(reason) > MaxReason {
		reason = reason[:MaxReason]
	}
	for !utf8.ValidString(reason) {
		reason = reason[:len(reason)-1]
	}
	b = AppendResponseHeader(b, s, uint32(len(reason)))
	return append(b, reason...)
}

// DecodeResponseHeader parses a response header. For an error status the
// length is checked against MaxReason; for StatusOK the caller checks it
// against what it asked for.
func DecodeResponseHeader(b []byte) (Status, uint32, error) {
	if len(b) != responseHeaderLen {
		return 0, 0, fmt.Errorf("%w: response header of %d bytes", ErrProtocol, len(b))
	}
	s := Status(b[0])
	if s > maxStatus {
		return 0, 0, fmt.Errorf("%w: unknown status %d", ErrProtocol, b[0])
	}
	n := binary.BigEndian.Uint32(b[1:])
	if s != StatusOK && n > MaxReason {
		return 0, 0, fmt.Errorf("%w: %s reason of %d bytes, limit %d", ErrProtocol, s, n, MaxReason)
	}
	return s, n, nil
}

// readResponse reads a response header and, for StatusOK, checks that the
// payload length is in [minLen, maxLen]. For an error status it reads the
// reason and returns a *StatusError.
func readResponse(r io.Reader, minLen, maxLen int) (int, error) {
	var hdr [responseHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, fmt.Errorf("reading response: %w", err)
	}
	s, n, err := DecodeResponseHeader(hdr[:])
	if err != nil {
		return 0, err
	}
	if s != StatusOK {
		var reason [MaxReason]byte
		if _, err := io.ReadFull(r, reason[:n]); err != nil {
			return 0, fmt.Errorf("reading %s reason: %w", s, err)
		}
		return 0, &StatusError{Status: s, Reason: string(reason[:n])}
	}
	if int64(n) < int64(minLen) || int64(n) > int64(maxLen) {
		return 0, fmt.Errorf("%w: payload of %d bytes, want %d..%d", ErrProtocol, n, minLen, maxLen)
	}
	return int(n), nil
}

// MsgType is the first byte of a control-stream message.
type MsgType uint8

// Control-stream message types.
const (
	MsgHello MsgType = 1 // what the sender holds: all, or a bitmap
	MsgHave  MsgType = 2 // chunks the sender verified since
)

// Hello flags.
const helloAll = 1 // the sender holds every chunk; no bitmap follows

// Message is one control-stream message.
type Message struct {
	Type MsgType
	// Hello: the chunk count, whether the sender holds everything, and if
	// not, a bitmap of ceil(N/8) bytes (chunk i is bit i%8, least significant
	// first, of byte i/8, as chunker.Bitmap; spare bits zero).
	N      int
	All    bool
	Bitmap []byte
	// Have: chunk indexes, 1..MaxHaveBatch of them.
	Indexes []uint32
}

// AppendMessage appends the encoding of m. It panics on a message that
// breaks the limits, which is a bug in the caller.
func AppendMessage(b []byte, m Message) []byte {
	switch m.Type {
	case MsgHello:
		if m.N < 0 || m.N > MaxChunks || (!m.All && len(m.Bitmap) != bitmapLen(m.N)) {
			panic("swarm: bad hello")
		}
		bl := 0
		if !m.All {
			bl = len(m.Bitmap)
		}
		b = append(b, byte(MsgHello))
		b = binary.BigEndian.AppendUint32(b, uint32(1+4+bl))
		flags := byte(0)
		if m.All {
			flags = helloAll
		}
		b = append(b, flags)
		b = binary.BigEndian.AppendUint32(b, uint32(m.N))
		if !m.All {
			b = append(b, m.Bitmap...)
		}
		return b
	case MsgHave:
		if len(m.Indexes) == 0 || len(m.Indexes) > MaxHaveBatch {
			panic("swarm: bad have batch")
		}
		b = append(b, byte(MsgHave))
		b = binary.BigEndian.AppendUint32(b, uint32(4*len(m.Indexes)))
		for _, i := range m.Indexes {
			b = binary.BigEndian.AppendUint32(b, i)
		}
		return b
	}
	panic("swarm: unknown message type")
}

// checkMsgHeader validates a message header and returns the body length.
func checkMsgHeader(h []byte) (MsgType, int, error) {
	t := MsgType(h[0])
	n := binary.BigEndian.Uint32(h[1:])
	var limit uint32
	switch t {
	case MsgHello:
		limit = maxHelloBody
		if n < 5 {
			return 0, 0, fmt.Errorf("%w: hello of %d bytes", ErrProtocol, n)
		}
	case MsgHave:
		limit = maxHaveBody
		if n == 0 || n%4 != 0 {
			return 0, 0, fmt.Errorf("%w: have of %d bytes", ErrProtocol, n)
		}
	default:
		return 0, 0, fmt.Errorf("%w: unknown message type %d", ErrProtocol, h[0])
	}
	if n > limit {
		return 0, 0, fmt.Errorf("%w: %d-byte message, limit %d", ErrProtocol, n, limit)
	}
	return t, int(n), nil
}

// decodeBody parses a message body of a checked type and length. The
// returned message aliases body.
func decodeBody(t MsgType, body []byte) (Message, error) {
	m := Message{Type: t}
	switch t {
	case MsgHello:
		flags := body[0]
		if flags&^helloAll != 0 {
			return Message{}, fmt.Errorf("%w: hello flags %#x", ErrProtocol, flags)
		}
		m.All = flags&helloAll != 0
		n := binary.BigEndian.Uint32(body[1:])
		if n > MaxChunks {
			return Message{}, fmt.Errorf("%w: hello for %d chunks, limit %d", ErrProtocol, n, MaxChunks)
		}
		m.N = int(n)
		rest := body[5:]
		if m.All {
			if len(rest) != 0 {
				return Message{}, fmt.Errorf("%w: hello-all with %d bitmap bytes", ErrProtocol, len(rest))
			}
			return m, nil
		}
		if len(rest) != bitmapLen(m.N) {
			return Message{}, fmt.Errorf("%w: bitmap of %d bytes for %d chunks", ErrProtocol, len(rest), m.N)
		}
		if r := m.N % 8; r != 0 && rest[len(rest)-1]>>r != 0 {
			return Message{}, fmt.Errorf("%w: spare bitmap bits set", ErrProtocol)
		}
		m.Bitmap = rest
	case MsgHave:
		m.Indexes = make([]uint32, len(body)/4)
		for i := range m.Indexes {
			m.Indexes[i] = binary.BigEndian.Uint32(body[4*i:])
		}
	}
	return m, nil
}

// DecodeMessage parses exactly one whole message.
func DecodeMessage(b []byte) (Message, error) {
	if len(b) < msgHeaderLen {
		return Message{}, fmt.Errorf("%w: message of %d bytes", ErrProtocol, len(b))
	}
	t, n, err := checkMsgHeader(b[:msgHeaderLen])
	if err != nil {
		return Message{}, err
	}
	if len(b) != msgHeaderLen+n {
		return Message{}, fmt.Errorf("%w: message of %d bytes, header says %d", ErrProtocol, len(b), msgHeaderLen+n)
	}
	return decodeBody(t, b[msgHeaderLen:])
}

// msgReader reads control messages, reusing one buffer.
type msgReader struct {
	r io.Reader
	// chunks, if positive, is the content's chunk count: a hello longer
	// than its bitmap needs is refused from the header alone.
	chunks int
	buf    []byte
}

// next reads one message. The message aliases the reader's buffer until the
// next call. A body is checked against the limits before anything is
// allocated, and a hello's buffer grows only with the bytes received.
func (mr *msgReader) next() (Message, error) {
	var h [msgHeaderLen]byte
	if _, err := io.ReadFull(mr.r, h[:]); err != nil {
		return Message{}, err
	}
	t, n, err := checkMsgHeader(h[:])
	if err != nil {
		return Message{}, err
	}
	if t == MsgHello && mr.chunks > 0 && n > 5+bitmapLen(mr.chunks) {
		return Message{}, fmt.Errorf("%w: %d-byte hello for %d chunks", ErrProtocol, n, mr.chunks)
	}
	var body []byte
	if cap(mr.buf) >= n {
		body = mr.buf[:n]
		_, err = io.ReadFull(mr.r, body)
		err = noEOF(err)
	} else {
		body, err = readGrowing(mr.r, n)
		mr.buf = body
	}
	if err != nil {
		return Message{}, fmt.Errorf("reading %d-byte message: %w", n, err)
	}
	return decodeBody(t, body)
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func bitmapLen(n int) int { return (n + 7) / 8 }
