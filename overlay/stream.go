package overlay

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Handler serves one incoming stream whose tag byte has been read. ctx is
// cancelled when the connection closes (including on Node.Close). The
// handler owns s until it returns; afterwards the node closes s's write
// side and stops its read side, so a handler that returns early never
// leaves the peer hanging. Close waits for handlers to return: they must
// honour ctx or be blocked only on s.
type Handler func(ctx context.Context, c *Conn, s *quic.Stream)

// Handle registers h for streams tagged tag, replacing any earlier handler.
// Streams with a tag that has no handler are reset with
// StreamCodeUnknownTag. Register handlers before peers can open streams.
func (n *Node) Handle(tag byte, h Handler) {
	n.handlersMu.Lock()
	defer n.handlersMu.Unlock()
	if h == nil {
		delete(n.handlers, tag)
		return
	}
	n.handlers[tag] = h
}

func (n *Node) handler(tag byte) Handler {
	n.handlersMu.RLock()
	defer n.handlersMu.RUnlock()
	return n.handlers[tag]
}

// OpenStream returns a new stream to peer tagged tag, reusing the open
// connection to peer or dialling addr when there is none (see Dial).
func (n *Node) OpenStream(ctx context.Context, peer identity.PeerID, addr netip.AddrPort, tag byte) (*quic.Stream, error) {
	c, err := n.Dial(ctx, peer, addr)
	if err != nil {
		return nil, err
	}
	return c.OpenStream(ctx, tag)
}

// serve accepts c's incoming streams, each on its own handler goroutine,
// until c closes; then it removes c from the table.
func (n *Node) serve(c *Conn) {
	defer n.wg.Done()
	ctx := c.qc.Context()
	for {
		s, err := c.qc.AcceptStream(ctx)
		if err != nil {
			n.unregister(c, err)
			return
		}
		n.wg.Add(1) // safe: this goroutine is counted, so Wait has not returned
		go n.serveStream(ctx, c, s)
	}
}

// serveStream reads the tag byte and runs the handler.
func (n *Node) serveStream(ctx context.Context, c *Conn, s *quic.Stream) {
	defer n.wg.Done()
	defer func() {
		s.Close()
		s.CancelRead(StreamCodeDone)
	}()
	var tag [1]byte
	s.SetReadDeadline(time.Now().Add(n.cfg.TagTimeout))
	if _, err := io.ReadFull(s, tag[:]); err != nil {
		n.stats.streamsBadTag.Add(1)
		s.CancelWrite(StreamCodeNoTag)
		n.log.Debug("overlay stream without tag", "peer", c.id.Short(), "err", err)
		return
	}
	s.SetReadDeadline(time.Time{})
	h := n.handler(tag[0])
	if h == nil {
		n.stats.streamsBadTag.Add(1)
		s.CancelWrite(StreamCodeUnknownTag)
		n.log.Debug("overlay stream with unknown tag", "peer", c.id.Short(), "tag", fmt.Sprintf("%#02x", tag[0]))
		return
	}
	n.stats.streamsHandled.Add(1)
	h(ctx, c, s)
}
