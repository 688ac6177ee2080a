package udpbatch

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
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

// receive reads count packets on dst in the background, each to be
// packet(i, size) from src, and reports the first mismatch or error.
func receive(dst, src net.PacketConn, count, size int) <-chan error {
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for i := range count {
			dst.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := dst.ReadFrom(buf)
			if err != nil {
				done <- fmt.Errorf("packet %d: %w", i, err)
				return
			}
			if !bytes.Equal(buf[:n], packet(i, size)) || from.String() != src.LocalAddr().String() {
				done <- fmt.Errorf("packet %d: %d bytes %.8q from %v", i, n, buf[:n], from)
				return
			}
		}
		done <- nil
	}()
	return done
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
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for i, n := range sizes {
			dst.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, from, err := dst.ReadFrom(buf)
			if err != nil {
				got <- fmt.Errorf("packet %d: %w", i, err)
				return
			}
			if from.String() != src.LocalAddr().String() {
				got <- fmt.Errorf("packet %d from %v, want %v", i, from, src.LocalAddr())
				return
			}
			if want := packet(i, n); !bytes.Equal(buf[:k], want[:n]) {
				got <- fmt.Errorf("packet %d: got %d bytes %.8q, want %d bytes %.8q", i, k, buf[:k], n, want)
				return
			}
		}
		got <- nil
	}()
	for i, n := range sizes {
		p := packet(i, 1400)[:n]
		if k, err := src.WriteTo(p, dst.LocalAddr()); err != nil || k != n {
			t.Fatalf("WriteTo packet %d: %d, %v", i, k, err)
		}
		if i%64 == 63 {
			time.Sleep(2 * time.Millisecond) // stay within the socket buffer
		}
	}
	if err := <-got; err != nil {
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
	var err error
	for range 50 {
		if _, err = c.WriteTo([]byte("x"), to); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err == nil {
		t.Fatal("no write reported the failed send")
	}
	t.Logf("reported: %v", err)
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
	errs := make(chan error, 6)
	for _, dst := range dsts {
		defer dst.Close()
		go func() {
			next := [2]int{}
			buf := make([]byte, 2048)
			for range 2 * perWriter {
				dst.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, _, err := dst.ReadFrom(buf)
				if err != nil {
					errs <- err
					return
				}
				w, seq := int(buf[0]), int(buf[1])
				if n != 1000 || w > 1 || seq != next[w] {
					errs <- fmt.Errorf("got writer %d packet %d (%d bytes), want packet %d", w, seq, n, next[w])
					return
				}
				next[w]++
			}
			errs <- nil
		}()
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
				if seq%40 == 39 {
					time.Sleep(time.Millisecond) // stay within the receive buffers
				}
			}
		}()
	}
	for range dsts {
		if err := <-errs; err != nil {
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
	done := receive(dst, src, count, 1200)
	for i := range count {
		if _, err := src.WriteTo(packet(i, 1200), dst.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
