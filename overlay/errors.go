package overlay

import (
	"errors"

	"github.com/quic-go/quic-go"
)

// Errors. Callers tell a peer that misbehaved (ErrWrongPeer, ErrBadCert)
// from one that is merely unreachable or busy (ErrRefused, ErrConnLimit,
// timeouts) with errors.Is.
var (
	// ErrClosed is returned by calls on a closed Node.
	ErrClosed = errors.New("overlay: node closed")
	// ErrWrongPeer means a dialled address answered with another key than
	// the PeerID the caller expected.
	ErrWrongPeer = errors.New("overlay: peer answered with another key")
	// ErrBadCert means the peer's TLS certificate is not a valid shoal
	// certificate (see the package doc for the layout).
	ErrBadCert = errors.New("overlay: bad peer certificate")
	// ErrConnLimit means this node already holds Config.MaxConns
	// connections and refuses another.
	ErrConnLimit = errors.New("overlay: connection limit reached")
	// ErrRefused means the remote node refused the connection, usually
	// because it is at its connection limit.
	ErrRefused = errors.New("overlay: connection refused by peer")
	// ErrSelf is returned when dialling the node's own PeerID.
	ErrSelf = errors.New("overlay: dialling self")
	// ErrNotDatagram means a datagram does not start with byte 0x00 and
	// would be taken for QUIC.
	ErrNotDatagram = errors.New("overlay: datagram must start with 0x00")
	// ErrDatagramSize means a datagram is longer than MaxDatagramSize.
	ErrDatagramSize = errors.New("overlay: datagram too large")
)

// QUIC application error codes this package sends when closing connections
// and streams.
const (
	// CodeNormal closes a connection without error.
	CodeNormal quic.ApplicationErrorCode = 0
	// CodeConnLimit refuses a connection beyond Config.MaxConns.
	CodeConnLimit quic.ApplicationErrorCode = 0x10
	// CodeNodeClosing closes connections when the node shuts down.
	CodeNodeClosing quic.ApplicationErrorCode = 0x11
	// CodeDuplicate retires a second connection to the same peer.
	CodeDuplicate quic.ApplicationErrorCode = 0x12

	// StreamCodeUnknownTag resets a stream whose tag has no handler.
	StreamCodeUnknownTag quic.StreamErrorCode = 0x10
	// StreamCodeNoTag resets a stream that sent no tag in time.
	StreamCodeNoTag quic.StreamErrorCode = 0x11
	// StreamCodeDone stops a stream the handler left unread.
	StreamCodeDone quic.StreamErrorCode = 0x12
)

// classifyDialErr maps quic-go's errors to this package's sentinels where
// one applies.
func classifyDialErr(err error) error {
	var te *quic.TransportError
	if errors.As(err, &te) && te.Remote && te.ErrorCode == quic.ConnectionRefused {
		return errors.Join(ErrRefused, err)
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode == CodeConnLimit {
		return errors.Join(ErrRefused, err)
	}
	return err
}
