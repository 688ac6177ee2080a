package udpbatch

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/testwait"
)

func listen(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// packet returns a packet of size n that names its sequence number.
func packet(seq, n int) []byte {
	p := bytes.Repeat([]byte{byte(seq)}, n)
	copy(p, fmt.Sprintf("%08d", seq))
	return p
}

// reader reads packets in the background and counts them, so that a
// writer can wait for it to catch up before writing on: a burst larger than
// the receive buffer would be dropped before the reader ran, and a sleep
// between bursts does not make the reader run on a loaded machine.
type reader struct {
	read  atomic.Int64 // packets read and checked
	ended atomic.Bool  // the reader stopped early; done holds why
	done  chan error   // the verdict: nil once count packets passed check
}

// startReader reads count packets on dst and passes each to check (i counts
// from 0), stopping at the first error.
func startReader(dst net.PacketConn, count int, check func(i int, p []byte, from net.Addr) error) *reader {
	r := &reader{done: make(chan error, 1)}
	go func() {
		buf := make([]byte, 2048)
		for i := range count {
			dst.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := dst.ReadFrom(buf)
			if err == nil {
				err = check(i, buf[:n], from)
			}
			if err != nil {
				r.ended.Store(true)
				r.done <- fmt.Errorf("packet %d: %w", i, err)
				return
			}
			r.read.Add(1)
		}
		r.done <- nil
	}()
	return r
}

// caughtUp is a testwait condition: the reader has read n packets, or it
// stopped early (its error is then in done).
func (r *reader) caughtUp(n int) func() error {
	return func() error {
		if got := r.read.Load(); got < int64(n) && !r.ended.Load() {
			return fmt.Errorf("reader at %d of %d packets", got, n)
		}
		return nil
	}
}

// receive reads count packets on dst in the background, each to be
// packet(i, size) from src.
func receive(dst, src net.PacketConn, count, size int) *reader {
	return startReader(dst, count, func(i int, p []byte, from net.Addr) error {
		if !bytes.Equal(p, packet(i, size)) || from.String() != src.LocalAddr().String() {
			return fmt.Errorf("%d bytes %.8q from %v", len(p), p, from)
		}
		return nil
	})
}

// TestOrderAndBoundaries sends packets of mixed sizes (equal runs, a shorter
// one ending a batch, a longer one starting one, empty ones) through a
// batching sender to a batching receiver: every datagram arrives whole, in
// order, with its own boundaries.
func TestOrderAndBoundaries(t *testing.T) {
	src, dst := New(listen(t)), New(listen(t))
	defer src.Close()
	defer dst.Close()
	var sizes []int
	for i := range 300 {
		switch {
		case i%97 == 0:
			sizes = append(sizes, 0)
		case i%50 == 49:
			sizes = append(sizes, 300) // ends a batch
		case i%120 == 119:
			sizes = append(sizes, 1400) // longer: starts a batch
		default:
			sizes = append(sizes, 1200)
		}
	}
	r := startReader(dst, len(sizes), func(i int, p []byte, from net.Addr) error {
		if from.String() != src.LocalAddr().String() {
			return fmt.Errorf("from %v, want %v", from, src.LocalAddr())
		}
		if want := packet(i, sizes[i]); !bytes.Equal(p, want) {
			return fmt.Errorf("got %d bytes %.8q, want %d bytes %.8q", len(p), p, len(want), want)
		}
		return nil
	})
	for i, n := range sizes {
		p := packet(i, 1400)[:n]
		if k, err := src.WriteTo(p, dst.LocalAddr()); err != nil || k != n {
			t.Fatalf("WriteTo packet %d: %d, %v", i, k, err)
		}
		if i%64 == 63 { // at most 64 packets in flight: within the socket buffer
			testwait.Eventually(t, 10*time.Second, "the reader catches up", r.caughtUp(i+1))
		}
	}
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
}

// TestHardErrorReported: a send that fails with a hard error (here: an
// IPv6 destination on an IPv4 socket) is reported by the next WriteTo to
// that destination, not lost.
func TestHardErrorReported(t *testing.T) {
	c := New(listen(t))
	defer c.Close()
	to := &net.UDPAddr{IP: net.ParseIP("::1"), Port: 9}
	var reported error
	testwait.Eventually(t, 10*time.Second, "a write reports the failed send", func() error {
		_, reported = c.WriteTo([]byte("x"), to)
		if reported == nil {
			return errors.New("every write succeeded")
		}
		return nil
	})
	t.Logf("reported: %v", reported)
}

func TestClosed(t *testing.T) {
	c := New(listen(t))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.WriteTo([]byte("x"), c.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo after Close: %v, want net.ErrClosed", err)
	}
	if _, _, err := c.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom after Close: %v, want net.ErrClosed", err)
	}
}

// TestInterleaved: two writers per destination, two destinations, writing
// at once. Every packet arrives, each writer's packets in their order, and
// interleaving destinations does not stop batching.
func TestInterleaved(t *testing.T) {
	src := New(listen(t))
	defer src.Close()
	dsts := []net.PacketConn{New(listen(t)), New(listen(t))}
	const perWriter = 100
	errs := make(chan error, 2)
	var readers []*reader
	for _, dst := range dsts {
		defer dst.Close()
		next := [2]int{}
		readers = append(readers, startReader(dst, 2*perWriter, func(_ int, p []byte, _ net.Addr) error {
			w, seq := int(p[0]), int(p[1])
			if len(p) != 1000 || w > 1 || seq != next[w] {
				return fmt.Errorf("got writer %d packet %d (%d bytes), want packet %d", w, seq, len(p), next[w])
			}
			next[w]++
			return nil
		}))
	}
	for w := range 2 {
		go func() {
			p := make([]byte, 1000)
			for seq := range perWriter {
				for _, dst := range dsts {
					p[0], p[1] = byte(w), byte(seq)
					if _, err := src.WriteTo(p, dst.LocalAddr()); err != nil {
						errs <- err
						return
					}
				}
				if seq%40 == 39 { // at most 40 packets per writer in flight: within the receive buffers
					for _, r := range readers {
						if err := testwait.Poll(10*time.Second, r.caughtUp(2*(seq+1))); err != nil {
							errs <- fmt.Errorf("writer %d: %w", w, err)
							return
						}
					}
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range readers {
		if err := <-r.done; err != nil {
			t.Fatal(err)
		}
	}
	checkSent(t, src, 4*perWriter)
}

// TestIPv6 runs a batched exchange over ::1, where the machine has it.
func TestIPv6(t *testing.T) {
	listen6 := func() *net.UDPConn {
		c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		return c
	}
	src, dst := New(listen6()), New(listen6())
	defer src.Close()
	defer dst.Close()
	const count = 100
	r := receive(dst, src, count, 1200)
	for i := range count {
		if _, err := src.WriteTo(packet(i, 1200), dst.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
}
