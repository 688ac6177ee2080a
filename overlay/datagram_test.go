package overlay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testwait"
)

// datagramSink collects datagrams handed to a node's hook.
type datagramSink struct {
	mu   sync.Mutex
	got  [][]byte
	from []netip.AddrPort
	bad  int // packets whose first byte was not 0x00
}

func (d *datagramSink) hook(from netip.AddrPort, b []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(b) == 0 || b[0] != 0x00 {
		d.bad++
	}
	if len(d.got) < 10000 {
		d.got = append(d.got, append([]byte(nil), b...))
		d.from = append(d.from, from)
	}
}

// has reports whether the hook got a packet equal to b.
func (d *datagramSink) has(b []byte) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, g := range d.got {
		if bytes.Equal(g, b) {
			return true
		}
	}
	return false
}

func (d *datagramSink) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.got)
}

func TestDatagrams(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sink datagramSink
	a := newNode(t, Config{})
	b := newNode(t, Config{OnDatagram: sink.hook})
	b.Handle(tagEcho, echo)

	s, err := a.OpenStream(ctx, b.PeerID(), b.LocalAddr(), tagEcho)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	var want [][]byte
	for i := range 20 {
		d := append([]byte{0x00, 0x02}, bytes.Repeat([]byte{byte(i)}, 1+i*60)...)
		want = append(want, d)
		if err := a.WriteDatagram(d, b.LocalAddr()); err != nil {
			t.Fatalf("WriteDatagram %d: %v", i, err)
		}
	}
	testwait.Eventually(t, 10*time.Second, "20 datagrams at B", func() error {
		if n := sink.count(); n < len(want) {
			return fmt.Errorf("%d arrived", n)
		}
		return nil
	})
	sink.mu.Lock()
	for i, d := range sink.got {
		if !bytes.Equal(d, want[i]) {
			t.Errorf("datagram %d: got %d bytes starting %x, want %d bytes starting %x", i, len(d), d[:2], len(want[i]), want[i][:2])
		}
		if sink.from[i] != a.LocalAddr() {
			t.Errorf("datagram %d from %s, want %s", i, sink.from[i], a.LocalAddr())
		}
	}
	sink.mu.Unlock()
	// QUIC is unaffected: the stream opened before still works.
	if got := roundTrip(t, ctx, s, []byte("still here")); string(got) != "still here" {
		t.Errorf("echo after datagrams %q", got)
	}

	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrNotDatagram},
		{"QUIC-looking first byte", []byte{0x40, 1, 2}, ErrNotDatagram},
		{"first byte 0x01", []byte{0x01}, ErrNotDatagram},
		{"too large", make([]byte, MaxDatagramSize+1), ErrDatagramSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := a.WriteDatagram(tt.b, b.LocalAddr()); !errors.Is(err, tt.want) {
				t.Errorf("WriteDatagram: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSetDatagramHandler(t *testing.T) {
	leakcheck.Check(t)
	a := newNode(t, Config{})
	b := newNode(t, Config{})
	var sink datagramSink
	b.SetDatagramHandler(sink.hook)
	if err := a.WriteDatagram([]byte{0x00, 1}, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 10*time.Second, "a datagram via SetDatagramHandler", func() error {
		if n := sink.count(); n != 1 {
			return fmt.Errorf("%d arrived, want 1", n)
		}
		return nil
	})
	b.SetDatagramHandler(nil) // back to the IPv8 Endpoint
	if err := a.WriteDatagram([]byte{0x00, 2}, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 10*time.Second, "a datagram at the IPv8 endpoint", func() error {
		if n := b.Endpoint().Stats().Received; n != 1 {
			return fmt.Errorf("%d received, want 1", n)
		}
		return nil
	})
	if n := sink.count(); n != 1 {
		t.Errorf("removed handler still got datagrams: %d, want 1", n)
	}
}

// TestGarbage throws random packets with every first-byte value at a node
// that holds an open connection, then checks that the node kept working,
// that only 0x00 packets reached the hook and that memory did not grow.
func TestGarbage(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sink datagramSink
	a := newNode(t, Config{})
	b := newNode(t, Config{OnDatagram: sink.hook})
	b.Handle(tagEcho, echo)
	s, err := a.OpenStream(ctx, b.PeerID(), b.LocalAddr(), tagEcho)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	if got := roundTrip(t, ctx, s, []byte("before")); string(got) != "before" {
		t.Fatalf("echo before garbage %q", got)
	}

	connBefore := a.Conn(b.PeerID()).QUIC()

	raw, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	to := net.UDPAddrFromAddrPort(b.LocalAddr())
	rng := rand.New(rand.NewPCG(1, 2))
	send := func(n int) {
		buf := make([]byte, 1500)
		for i := range n {
			p := buf[:1+rng.IntN(len(buf))]
			for j := range p {
				p[j] = byte(rng.Uint32())
			}
			p[0] = byte(i) // every first-byte value, in turn
			if _, err := raw.WriteTo(p, to); err != nil {
				t.Fatalf("sending garbage: %v", err)
			}
			if i%64 == 63 {
				time.Sleep(200 * time.Microsecond) // paces the flood so the node keeps up
			}
		}
	}
	// drained waits until the node has read everything sent before it: a
	// marker datagram sent after the garbage (again while quic-go's queue
	// drops it) reaches the hook.
	drained := func(mark byte) {
		t.Helper()
		marker := []byte{0x00, 'd', 'r', 'a', 'i', 'n', 'e', 'd', mark}
		testwait.Eventually(t, 10*time.Second, "the node reads every packet sent", func() error {
			if _, err := raw.WriteTo(marker, to); err != nil {
				return fmt.Errorf("sending marker: %w", err)
			}
			if !sink.has(marker) {
				return fmt.Errorf("marker %q not read yet", marker[1:])
			}
			return nil
		})
	}
	send(2000) // warm up pools and buffers before measuring
	drained(1)
	before := heapInUse()
	const rounds = 20000
	send(rounds)
	drained(2)
	after := heapInUse()
	const bound = 16 << 20
	if after > before+bound {
		t.Errorf("heap grew from %d to %d bytes after %d garbage packets, want under +%d", before, after, rounds, bound)
	}
	t.Logf("heap in use %d -> %d bytes; datagrams delivered %d, dropped %d", before, after, b.Stats().Datagrams, b.Stats().DatagramsDrop)

	sink.mu.Lock()
	bad, got := sink.bad, len(sink.got)
	sink.mu.Unlock()
	if bad != 0 {
		t.Errorf("hook got %d packets not starting with 0x00", bad)
	}
	if got == 0 {
		t.Errorf("hook got none of the garbage packets starting with 0x00")
	}
	// The open connection and its existing stream keep working.
	s2, err := a.OpenStream(ctx, b.PeerID(), b.LocalAddr(), tagEcho)
	if err != nil {
		t.Fatalf("OpenStream after garbage: %v", err)
	}
	if got := roundTrip(t, ctx, s2, []byte("after")); string(got) != "after" {
		t.Errorf("echo after garbage %q", got)
	}
	if st := a.Stats(); st.Conns != 1 {
		t.Errorf("A has %d connections after garbage, want the 1 it had", st.Conns)
	}
	if c := a.Conn(b.PeerID()); c == nil || c.QUIC() != connBefore {
		t.Errorf("A's connection to B was replaced during the garbage")
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestQUICSeesSocketDescriptor: quic-go sets the don't-fragment bit, and so
// runs path-MTU discovery, only on a socket whose SyscallConn it can reach;
// the datagram demultiplexer in front of the socket must pass it through,
// with batching and without, or every QUIC packet stays at 1,252 bytes.
func TestQUICSeesSocketDescriptor(t *testing.T) {
	for _, noBatching := range []bool{false, true} {
		n := newNode(t, Config{ListenAddr: "127.0.0.1:0", NoBatching: noBatching})
		if _, ok := n.tr.Conn.(syscall.Conn); !ok {
			t.Errorf("NoBatching=%v: quic-go's socket %T hides SyscallConn", noBatching, n.tr.Conn)
		}
	}
}
