package overlay

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Conn is an authenticated QUIC connection to one peer. Its peer identity
// is fixed at the handshake. Methods are safe for concurrent use.
type Conn struct {
	node     *Node
	qc       *quic.Conn
	pk       identity.PublicKey
	id       identity.PeerID
	remote   netip.AddrPort
	outbound bool

	retire *time.Timer // guarded by Node.mu: closes a duplicate connection
}

// PeerID returns the peer's PeerID, derived from its certificate.
func (c *Conn) PeerID() identity.PeerID { return c.id }

// PublicKey returns the peer's 74-byte public key from its certificate.
func (c *Conn) PublicKey() identity.PublicKey { return c.pk }

// RemoteAddr returns the peer's UDP address as seen at the handshake.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// Outbound reports whether this node dialled the connection.
func (c *Conn) Outbound() bool { return c.outbound }

// QUIC returns the underlying quic-go connection, for statistics and
// deadlines. Callers must not accept streams on it: the node does.
func (c *Conn) QUIC() *quic.Conn { return c.qc }

// Context is cancelled when the connection closes; context.Cause says why.
func (c *Conn) Context() context.Context { return c.qc.Context() }

// Close closes the connection with CodeNormal.
func (c *Conn) Close() error { return c.qc.CloseWithError(CodeNormal, "") }

// OpenStream opens a stream and writes tag as its first byte. The caller
// owns the stream: it must Close it (its write side) and read to EOF or
// CancelRead.
func (c *Conn) OpenStream(ctx context.Context, tag byte) (*quic.Stream, error) {
	s, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("overlay: opening stream to %s: %w", c.id.Short(), err)
	}
	if _, err := s.Write([]byte{tag}); err != nil {
		s.CancelRead(StreamCodeDone)
		s.CancelWrite(StreamCodeDone)
		return nil, fmt.Errorf("overlay: writing stream tag to %s: %w", c.id.Short(), err)
	}
	return s, nil
}

// preferred reports whether c is dialled by the smaller of the two
// PeerIDs. Among several connections to one peer, both sides open new
// streams on a preferred one (the newest, among equals) and retire the
// others; they agree without talking.
func (c *Conn) preferred(self identity.PeerID) bool {
	dialer := c.id
	if c.outbound {
		dialer = self
	}
	return dialer == minID(self, c.id)
}

func minID(a, b identity.PeerID) identity.PeerID {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return a
			}
			return b
		}
	}
	return a
}

// Conn returns the connection to peer that carries new streams, or nil.
func (n *Node) Conn(peer identity.PeerID) *Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bestLocked(peer)
}

// Conns returns one connection per connected peer.
func (n *Node) Conns() []*Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Conn, 0, len(n.conns))
	for id := range n.conns {
		if c := n.bestLocked(id); c != nil {
			out = append(out, c)
		}
	}
	return out
}

// bestLocked picks the live connection to peer that new streams use. Two
// may exist when both sides dial at once (or a peer restarted); the others
// keep carrying the streams already on them for Config.DuplicateGrace and
// are then closed (see retireLocked).
func (n *Node) bestLocked(peer identity.PeerID) *Conn {
	var best *Conn
	for _, c := range n.conns[peer] {
		if c.qc.Context().Err() != nil {
			continue
		}
		if best == nil || c.preferred(n.id) || !best.preferred(n.id) {
			best = c
		}
	}
	return best
}

// retireLocked arms the retire timer of every connection to peer but the
// best one. When the timer fires, a connection that has become the best
// meanwhile (the other one died) is kept.
func (n *Node) retireLocked(peer identity.PeerID) {
	best := n.bestLocked(peer)
	for _, c := range n.conns[peer] {
		if c == best || c.retire != nil {
			continue
		}
		c.retire = time.AfterFunc(n.cfg.DuplicateGrace, func() {
			n.mu.Lock()
			keep := n.bestLocked(c.id) == c
			if keep {
				c.retire = nil // re-armed if another connection appears
			}
			n.mu.Unlock()
			if !keep {
				c.qc.CloseWithError(CodeDuplicate, "duplicate connection")
			}
		})
	}
}

// register adds a handshaken connection to the table and starts serving
// its incoming streams. outbound says this node dialled it (and held a
// dial slot for it).
func (n *Node) register(qc *quic.Conn, outbound bool) (*Conn, error) {
	pk, err := stateKey(qc.ConnectionState().TLS) // verified in the handshake; re-read here
	if err != nil {
		qc.CloseWithError(CodeNormal, "bad certificate")
		return nil, err
	}
	c := &Conn{node: n, qc: qc, pk: pk, id: pk.PeerID(), outbound: outbound}
	c.remote, _ = addrPort(qc.RemoteAddr())

	adm, _ := qc.Context().Value(admissionKey{}).(*admission)
	n.mu.Lock()
	if outbound {
		n.ndials-- // the dial's reserved slot becomes this connection
	} else {
		n.settleLocked(adm) // so does the handshake's
	}
	switch {
	case n.closed:
		n.mu.Unlock()
		qc.CloseWithError(CodeNodeClosing, "node closing")
		return nil, ErrClosed
	case c.id == n.id:
		n.mu.Unlock()
		qc.CloseWithError(CodeNormal, "connected to self")
		return nil, ErrSelf
	case !outbound && len(n.conns[c.id]) >= n.cfg.MaxConnsPerPeer:
		n.mu.Unlock()
		n.stats.refuse(refusedPeerConns)
		qc.CloseWithError(CodeConnLimit, "connection limit per peer")
		return nil, ErrConnLimit
	case n.usedLocked() >= n.cfg.MaxConns:
		n.mu.Unlock()
		n.stats.refuse(refusedConns)
		qc.CloseWithError(CodeConnLimit, "connection limit")
		return nil, ErrConnLimit
	}
	first := len(n.conns[c.id]) == 0
	n.conns[c.id] = append(n.conns[c.id], c)
	n.retireLocked(c.id)
	n.nconns++
	n.stats.conns.Add(1)
	if first {
		n.events = append(n.events, PeerEvent{Kind: PeerConnected, Peer: c.id, PublicKey: pk, Addr: c.remote, Outbound: outbound})
	}
	n.wg.Add(1) // under mu, so Close cannot be waiting yet
	n.mu.Unlock()

	n.log.Debug("overlay connection up", "peer", c.id.Short(), "addr", c.remote.String(), "outbound", outbound)
	n.deliverEvents()
	go n.serve(c)
	return c, nil
}

// unregister removes c from the table when it has closed; err is what
// ended it.
func (n *Node) unregister(c *Conn, err error) {
	cause := context.Cause(c.qc.Context())
	if cause == nil || cause == context.Canceled {
		cause = err
	}
	n.mu.Lock()
	if c.retire != nil {
		c.retire.Stop()
	}
	cs := n.conns[c.id]
	for i, x := range cs {
		if x == c {
			cs = append(cs[:i], cs[i+1:]...)
			n.nconns--
			n.stats.conns.Add(-1)
			break
		}
	}
	if len(cs) == 0 {
		delete(n.conns, c.id)
		n.events = append(n.events, PeerEvent{Kind: PeerDisconnected, Peer: c.id, PublicKey: c.pk, Addr: c.remote, Outbound: c.outbound, Err: cause})
	} else {
		n.conns[c.id] = cs
	}
	n.mu.Unlock()
	n.log.Debug("overlay connection down", "peer", c.id.Short(), "addr", c.remote.String(), "err", cause)
	n.deliverEvents()
}
