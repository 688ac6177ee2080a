package overlay

import (
	"net/netip"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// PeerEventKind says what happened to a peer.
type PeerEventKind uint8

// Peer event kinds.
const (
	// PeerConnected: the first connection to the peer is up.
	PeerConnected PeerEventKind = iota + 1
	// PeerDisconnected: the last connection to the peer closed.
	PeerDisconnected
)

func (k PeerEventKind) String() string {
	switch k {
	case PeerConnected:
		return "connected"
	case PeerDisconnected:
		return "disconnected"
	}
	return "unknown"
}

// PeerEvent reports a peer gaining its first or losing its last connection.
// Events for one peer alternate, starting with PeerConnected.
type PeerEvent struct {
	Kind      PeerEventKind
	Peer      identity.PeerID
	PublicKey identity.PublicKey
	Addr      netip.AddrPort // the connection's remote address
	Outbound  bool           // this node dialled the connection
	Err       error          // for PeerDisconnected: why (idle timeout, peer closed, ...)
}

// deliverEvents hands queued events to Config.OnPeer in queue order. One
// goroutine delivers at a time; others just queue. The callback runs
// without n.mu held, so it may call back into the node (events it causes
// are delivered by the same loop after it returns).
func (n *Node) deliverEvents() {
	n.mu.Lock()
	if n.delivering {
		n.mu.Unlock()
		return
	}
	n.delivering = true
	for len(n.events) > 0 {
		batch := n.events
		n.events = nil
		n.mu.Unlock()
		for _, ev := range batch {
			if n.cfg.OnPeer != nil {
				n.cfg.OnPeer(ev)
			}
		}
		n.mu.Lock()
	}
	n.delivering = false
	n.mu.Unlock()
}
