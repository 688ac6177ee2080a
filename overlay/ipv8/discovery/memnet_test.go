package discovery

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// memNet is an in-memory UDP network for tests under testing/synctest:
// every blocking operation waits on a channel of the bubble, so the fake
// clock advances whenever all nodes are idle. One seed decides losses.
type memNet struct {
	mu    sync.Mutex
	conns map[netip.AddrPort]*memConn
	rng   *rand.Rand
	loss  float64
	delay time.Duration
	next  uint16 // next port handed out
}

func newMemNet(seed uint64, loss float64, delay time.Duration) *memNet {
	return &memNet{conns: map[netip.AddrPort]*memConn{}, rng: rand.New(rand.NewPCG(seed, 7)), loss: loss, delay: delay, next: 20000}
}

type memPacket struct {
	b    []byte
	from netip.AddrPort
}

// memConn is one socket of a memNet. Its queue holds 256 datagrams;
// past that, datagrams are dropped as a full socket buffer drops them.
type memConn struct {
	net      *memNet
	addr     netip.AddrPort
	in       chan memPacket
	done     chan struct{} // closed by Close or a past read deadline
	doneOnce sync.Once
}

func (n *memNet) listen() *memConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.next++
	c := &memConn{net: n, addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), n.next),
		in: make(chan memPacket, 256), done: make(chan struct{})}
	n.conns[c.addr] = c
	return c
}

func (c *memConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.in:
		return copy(b, p.b), net.UDPAddrFromAddrPort(p.from), nil
	case <-c.done:
		return 0, nil, os.ErrDeadlineExceeded
	}
}

func (c *memConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	to := addr.(*net.UDPAddr).AddrPort()
	n := c.net
	n.mu.Lock()
	dst := n.conns[netip.AddrPortFrom(to.Addr().Unmap(), to.Port())]
	lost := n.loss > 0 && n.rng.Float64() < n.loss
	delay := n.delay
	if delay > 0 {
		delay += time.Duration(n.rng.Int64N(int64(delay)/4 + 1))
	}
	n.mu.Unlock()
	if dst == nil || lost {
		return len(b), nil
	}
	p := memPacket{b: append([]byte(nil), b...), from: c.addr}
	deliver := func() {
		select {
		case dst.in <- p:
		default:
		}
	}
	if delay > 0 {
		time.AfterFunc(delay, deliver)
	} else {
		deliver()
	}
	return len(b), nil
}

func (c *memConn) Close() error {
	c.net.mu.Lock()
	delete(c.net.conns, c.addr)
	c.net.mu.Unlock()
	c.doneOnce.Do(func() { close(c.done) })
	return nil
}

func (c *memConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.addr) }

func (c *memConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline supports what Endpoint.ServeConn needs: a deadline in
// the past ends the read in progress.
func (c *memConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && !t.After(time.Now()) {
		c.doneOnce.Do(func() { close(c.done) })
	}
	return nil
}

func (c *memConn) SetWriteDeadline(time.Time) error { return nil }
