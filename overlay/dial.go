package overlay

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// dialKey names a dial in progress: callers dialling the same peer at the
// same address share it.
type dialKey struct {
	peer identity.PeerID
	addr netip.AddrPort
}

// dialCall is one dial in progress.
type dialCall struct {
	done chan struct{} // closed when c and err are set
	c    *Conn
	err  error
}

// Dial returns the connection to peer, dialling addr if there is none. A
// zero peer accepts whoever answers (for bootstrap addresses); otherwise a
// peer answering with another key fails the dial with ErrWrongPeer.
// Concurrent dials to one peer at one address share one attempt, bounded
// by Config.DialTimeout; ctx bounds only this caller's wait.
func (n *Node) Dial(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (*Conn, error) {
	return n.dial(ctx, peer, addr, true)
}

// DialNew dials peer at addr even when a connection to it is open, as a
// node upgrading a relayed connection to a direct one does (package
// overlay/relay). The connection that then carries new streams is chosen
// as for any two connections to one peer; close the old one to retire it
// at once.
func (n *Node) DialNew(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (*Conn, error) {
	return n.dial(ctx, peer, addr, false)
}

func (n *Node) dial(ctx context.Context, peer identity.PeerID, addr netip.AddrPort, reuse bool) (*Conn, error) {
	if peer == n.id {
		return nil, ErrSelf
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	if !peer.IsZero() && reuse {
		if c := n.bestLocked(peer); c != nil {
			n.mu.Unlock()
			return c, nil
		}
	}
	key := dialKey{peer, addr}
	d := n.dials[key]
	if d == nil || peer.IsZero() {
		if n.usedLocked() >= n.cfg.MaxConns {
			n.mu.Unlock()
			return nil, fmt.Errorf("%w: %d connections", ErrConnLimit, n.cfg.MaxConns)
		}
		d = &dialCall{done: make(chan struct{})}
		if !peer.IsZero() {
			n.dials[key] = d
		}
		n.ndials++
		n.wg.Add(1)
		go n.runDial(peer, addr, d)
	}
	n.mu.Unlock()
	select {
	case <-d.done:
		return d.c, d.err
	case <-ctx.Done():
		return nil, fmt.Errorf("overlay: dialling %s at %s: %w", peer.Short(), addr, context.Cause(ctx))
	}
}

// runDial performs one dial and publishes the result to its waiters.
func (n *Node) runDial(peer identity.PeerID, addr netip.AddrPort, d *dialCall) {
	defer n.wg.Done()
	c, err := n.dialOnce(peer, addr)
	if err != nil {
		err = fmt.Errorf("overlay: dialling %s at %s: %w", peer.Short(), addr, err)
	}
	n.mu.Lock()
	if key := (dialKey{peer, addr}); n.dials[key] == d {
		delete(n.dials, key)
	}
	n.mu.Unlock()
	d.c, d.err = c, err
	close(d.done)
}

// dialOnce dials addr, checks the peer's identity and registers the
// connection. It releases the dial's slot in every case.
func (n *Node) dialOnce(peer identity.PeerID, addr netip.AddrPort) (*Conn, error) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.DialTimeout)
	defer cancel()
	var (
		mu       sync.Mutex
		mismatch error
	)
	tlsConf := n.clientTLS.Clone()
	expect := expectPeer(peer)
	tlsConf.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
		err := expect(raw, chains)
		if errors.Is(err, ErrWrongPeer) { // quic-go's handshake error hides it
			mu.Lock()
			mismatch = err
			mu.Unlock()
		}
		return err
	}
	n.stats.dials.Add(1)
	qc, err := n.tr.Dial(ctx, net.UDPAddrFromAddrPort(addr), tlsConf, n.qconf)
	if err != nil {
		n.mu.Lock()
		n.ndials--
		n.mu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		if mismatch != nil {
			return nil, mismatch
		}
		return nil, classifyDialErr(err)
	}
	return n.register(qc, true)
}
