package overlay

import (
	"context"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"net"
	"sync"
	"testing"
	"time"
)

// spyConn records the first byte of every packet written through it.
type spyConn struct {
	net.PacketConn
	mu     sync.Mutex
	firsts map[byte]int
}

func (s *spyConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	s.mu.Lock()
	if len(b) > 0 {
		s.firsts[b[0]]++
	}
	s.mu.Unlock()
	return s.PacketConn.WriteTo(b, addr)
}

// TestFixedBitNeverGreased checks every packet a node sends: QUIC packets
// keep the fixed bit 0x40 (so they can never be taken for IPv8 datagrams)
// and datagrams start with 0x00.
func TestFixedBitNeverGreased(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	spy := func() *spyConn {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		return &spyConn{PacketConn: udp, firsts: map[byte]int{}}
	}
	sa, sb := spy(), spy()
	a := newNode(t, Config{PacketConn: sa})
	b := newNode(t, Config{PacketConn: sb})
	b.Handle(tagEcho, echo)
	for range 5 {
		s, err := a.OpenStream(ctx, b.PeerID(), b.LocalAddr(), tagEcho)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, ctx, s, make([]byte, 64<<10))
	}
	if err := a.WriteDatagram([]byte{0x00, 0x02, 1}, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*spyConn{"A": sa, "B": sb} {
		s.mu.Lock()
		total := 0
		for first, n := range s.firsts {
			total += n
			if first != 0x00 && first&0x40 == 0 {
				t.Errorf("%s sent %d packets with first byte %#02x: fixed bit clear", name, n, first)
			}
		}
		s.mu.Unlock()
		if total < 10 {
			t.Errorf("%s sent only %d packets; the spy saw too little", name, total)
		}
	}
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if n := sa.firsts[0x00]; n != 1 {
		t.Errorf("A sent %d packets starting 0x00, want the 1 datagram", n)
	}
}
