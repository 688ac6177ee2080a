package overlay

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
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

// datagramQueue is the capacity, in packets, of the queue between the
// socket reader and the goroutine that runs the datagram handler. The
// reader (quic-go's, through demuxConn) only copies and queues; the
// handler (signature checks) runs behind the queue. When the queue is
// full, new packets are dropped and counted (about 1.5 MB of copies at
// most).
const datagramQueue = 1024

type datagram struct {
	from netip.AddrPort
	b    []byte
}

// demuxConn is the socket as quic-go sees it: its reads take the non-QUIC
// packets out before quic-go sees them. quic-go's own queue for those
// holds 32 packets and drops the rest without counting, which a burst of
// DHT and discovery datagrams overflows whenever the handler is slow.
// Packets with QUIC's fixed bit (0x40) or a long header (0x80) go to
// quic-go, as quic-go itself tells them apart; of the rest, those starting
// with 0x00 go to the node's datagram queue, and others (and empty ones)
// are dropped and counted. Only quic-go's read loop calls ReadFrom.
type demuxConn struct {
	net.PacketConn
	n *Node
}

func (c demuxConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		k, from, err := c.PacketConn.ReadFrom(p)
		if err != nil || (k > 0 && p[0]&0xc0 != 0) { // fixed bit or long header: QUIC, as quic-go tells them
			return k, from, err
		}
		c.n.queueDatagram(p[:k], from)
	}
}

// queueDatagram queues a copy of a non-QUIC packet for deliverLoop, or
// drops it with its reason counted.
func (n *Node) queueDatagram(b []byte, from net.Addr) {
	ap, ok := addrPort(from)
	switch {
	case len(b) == 0 || b[0] != 0x00:
		n.stats.datagramsDropByte.Add(1)
		return
	case !ok:
		n.stats.datagramsDropAddr.Add(1)
		return
	}
	select {
	case n.dgrams <- datagram{from: ap, b: append([]byte(nil), b...)}:
	default:
		n.stats.datagramsDropQueue.Add(1)
	}
}

// deliverLoop hands queued datagrams to the datagram handler, one at a
// time in arrival order, until the node shuts down.
func (n *Node) deliverLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case d := <-n.dgrams:
			n.stats.datagrams.Add(1)
			(*n.onDatagram.Load())(d.from, d.b)
		}
	}
}

// demuxSysConn is a demuxConn over a socket that exposes its descriptor
// (the plain and the batching UDP socket do). quic-go sets the
// don't-fragment bit through SyscallConn, and without it turns path-MTU
// discovery off and keeps every packet at its 1,252-byte starting size:
// about 15% more packets per byte, measured as 6-7% more CPU per GiB.
type demuxSysConn struct{ demuxConn }

func (c demuxSysConn) SyscallConn() (syscall.RawConn, error) {
	return c.PacketConn.(syscall.Conn).SyscallConn()
}

// quicConn returns the socket quic-go reads: pc behind the demultiplexer,
// with pc's SyscallConn where it has one.
func (n *Node) quicConn(pc net.PacketConn) net.PacketConn {
	d := demuxConn{PacketConn: pc, n: n}
	if _, ok := pc.(syscall.Conn); ok {
		return demuxSysConn{d}
	}
	return d
}

// SetReadBuffer and SetWriteBuffer accept quic-go's buffer requests and do
// nothing: the node has sized the socket already (see tuneBuffers), past
// the sysctl limit where it may, and quic-go would lower it to that limit.
func (demuxConn) SetReadBuffer(int) error  { return nil }
func (demuxConn) SetWriteBuffer(int) error { return nil }
