package overlay

import (
	"fmt"
	"net"
	"net/netip"
)

// MaxDatagramSize is the largest non-QUIC datagram the node sends or
// receives whole: quic-go reads packets into 1,452-byte buffers, so longer
// ones arrive truncated. IPv8 keeps its datagrams under about 1,400 bytes.
const MaxDatagramSize = 1452

// SetDatagramHandler replaces the function that receives non-QUIC packets
// (see Config.OnDatagram); nil restores the default, the IPv8 Endpoint.
func (n *Node) SetDatagramHandler(f func(from netip.AddrPort, b []byte)) {
	if f == nil {
		f = n.ep.HandlePacket
	}
	n.onDatagram.Store(&f)
}

// datagramWriter lets the IPv8 Endpoint send through WriteDatagram.
type datagramWriter struct{ n *Node }

// LocalAddr is the socket's address, for the IPv8 walk's LAN address.
func (w datagramWriter) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(w.n.local) }

func (w datagramWriter) WriteTo(b []byte, addr net.Addr) (int, error) {
	ap, ok := addrPort(addr)
	if !ok {
		return 0, fmt.Errorf("overlay: datagram address %v is not UDP", addr)
	}
	if err := w.n.WriteDatagram(b, ap); err != nil {
		return 0, err
	}
	return len(b), nil
}

// WriteDatagram sends b to addr as one UDP packet on the node's socket,
// beside QUIC. b must start with 0x00 (so receivers do not take it for
// QUIC) and be at most MaxDatagramSize bytes. It does not retain b.
func (n *Node) WriteDatagram(b []byte, to netip.AddrPort) error {
	if len(b) == 0 || b[0] != 0x00 {
		return ErrNotDatagram
	}
	if len(b) > MaxDatagramSize {
		return fmt.Errorf("%w: %d bytes, max %d", ErrDatagramSize, len(b), MaxDatagramSize)
	}
	if _, err := n.tr.WriteTo(b, net.UDPAddrFromAddrPort(to)); err != nil {
		return fmt.Errorf("overlay: writing datagram to %s: %w", to, err)
	}
	return nil
}

// datagramLoop reads non-QUIC packets and hands those starting with 0x00
// to the datagram handler, until the node closes. quic-go queues at most 32
// such packets and drops the rest while this loop is busy.
func (n *Node) datagramLoop() {
	defer n.wg.Done()
	buf := make([]byte, MaxDatagramSize)
	for {
		k, from, err := n.tr.ReadNonQUICPacket(n.ctx, buf)
		if err != nil {
			if n.ctx.Err() == nil {
				n.log.Warn("overlay datagram reader stopped", "err", err)
			}
			return
		}
		b := buf[:k]
		f := n.onDatagram.Load()
		ap, ok := addrPort(from)
		switch {
		case k == 0 || b[0] != 0x00:
			n.stats.datagramsDropByte.Add(1)
			continue
		case !ok:
			n.stats.datagramsDropAddr.Add(1)
			continue
		}
		n.stats.datagrams.Add(1)
		(*f)(ap, b)
	}
}
