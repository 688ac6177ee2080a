package adversary

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// SlowLink is a UDP relay that delays every datagram by a fixed time each
// way: a peer reached through it looks like a peer on a slow link (round
// trip twice the delay), so tests can check that an honest but distant
// peer is not taken for a staller. It is not an attacker; it lives here
// beside them because the tests that need it are attack tests.
//
// Each client address gets its own socket towards the target, so the
// target sees one address per client, as it would through a NAT. Only
// QUIC works through it (a TCP dial to its address is refused).
type SlowLink struct {
	pc     *net.UDPConn
	target netip.AddrPort
	delay  time.Duration

	mu      sync.Mutex
	clients map[netip.AddrPort]*net.UDPConn
	closed  bool
	wg      sync.WaitGroup // readers and datagrams still delayed
}

// maxDatagram is the largest datagram the relay forwards.
const maxDatagram = 64 << 10

// NewSlowLink starts a relay on 127.0.0.1 to target that delays each
// datagram by delay; it is closed when the test ends.
func NewSlowLink(tb testing.TB, target netip.AddrPort, delay time.Duration) *SlowLink {
	tb.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		tb.Fatalf("adversary: slow link: %v", err)
	}
	l := &SlowLink{pc: pc, target: target, delay: delay, clients: make(map[netip.AddrPort]*net.UDPConn)}
	l.wg.Go(l.inbound)
	tb.Cleanup(l.Close)
	return l
}

// Addr returns the relay's address: dial it instead of the target.
func (l *SlowLink) Addr() netip.AddrPort { return l.pc.LocalAddr().(*net.UDPAddr).AddrPort() }

// Close stops the relay and waits for its goroutines and for the datagrams
// still delayed (dropped: their sockets are closed).
func (l *SlowLink) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	for _, c := range l.clients {
		c.Close()
	}
	l.mu.Unlock()
	l.pc.Close()
	l.wg.Wait()
}

// inbound forwards datagrams from clients to the target, each from the
// client's own socket.
func (l *SlowLink) inbound() {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := l.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		up := l.upstream(from)
		if up == nil {
			return
		}
		l.later(buf[:n], func(b []byte) { up.Write(b) })
	}
}

// upstream returns the socket towards the target for client from,
// starting it (and its return path) on first use; nil once closed.
func (l *SlowLink) upstream(from netip.AddrPort) *net.UDPConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	if c := l.clients[from]; c != nil {
		return c
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(l.target))
	if err != nil {
		return nil
	}
	l.clients[from] = c
	l.wg.Go(func() {
		buf := make([]byte, maxDatagram)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			l.later(buf[:n], func(b []byte) { l.pc.WriteToUDPAddrPort(b, from) })
		}
	})
	return c
}

// later calls send with a copy of b after the delay. It does not block;
// Close waits for it.
func (l *SlowLink) later(b []byte, send func([]byte)) {
	b = append([]byte(nil), b...)
	l.wg.Add(1)
	time.AfterFunc(l.delay, func() {
		defer l.wg.Done()
		send(b)
	})
}
