package swarm

import (
	"context"
	"io"
	"net/netip"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Tag is the overlay protocol tag byte of swarm streams.
const Tag byte = 's'

// Stream is one bidirectional QUIC stream. *quic.Stream satisfies it.
// Close ends the send side cleanly; CancelRead and CancelWrite reset one
// direction each with an application error code.
type Stream interface {
	io.Reader
	io.Writer
	Close() error
	CancelRead(quic.StreamErrorCode)
	CancelWrite(quic.StreamErrorCode)
	SetDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// Dialer opens swarm streams to peers, dialing (or reusing) the one
// connection to the peer. The overlay node satisfies it through DialerFunc
// (writing Tag first is the dialer's job).
type Dialer interface {
	OpenStream(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (Stream, error)
}

// DialerFunc adapts a function to Dialer.
type DialerFunc func(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (Stream, error)

// OpenStream calls f.
func (f DialerFunc) OpenStream(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (Stream, error) {
	return f(ctx, peer, addr)
}

// reset aborts both directions of st with code.
func reset(st Stream, code quic.StreamErrorCode) {
	st.CancelRead(code)
	st.CancelWrite(code)
}

// watch resets st with code when ctx ends, until the returned stop is
// called. stop reports whether the reset happened.
func watch(ctx context.Context, st Stream, code quic.StreamErrorCode) (stop func() bool) {
	return context.AfterFunc(ctx, func() { reset(st, code) })
}
