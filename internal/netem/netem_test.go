package netem

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/testwait"
)

func udpPair(t *testing.T) (a, b *net.UDPConn) {
	t.Helper()
	a, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	b, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	if err := b.SetReadBuffer(4 << 20); err != nil {
		t.Logf("SetReadBuffer: %v", err)
	}
	return a, b
}

// sentinel is not a packet number send writes: it marks the end.
const sentinel = math.MaxUint32

// receive reads numbered packets on conn in the background, so that the
// receive buffer never holds a whole burst. The returned stop waits until
// c has delivered or dropped every packet written to it and as many packets
// were read as c delivered, then writes a sentinel on c's own socket, which
// arrives after them, and returns the packet numbers read before it (any
// beyond the delivered ones included), in arrival order.
func receive(t *testing.T, c *Conn, conn net.PacketConn) (stop func() []uint32) {
	t.Helper()
	type result struct {
		got []uint32
		err error
	}
	done := make(chan result, 1)
	var read atomic.Uint64
	before := c.Stats().Delivered
	go func() {
		var got []uint32
		buf := make([]byte, 64)
		for {
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				done <- result{got, fmt.Errorf("read: %w", err)}
				return
			}
			if n != 4 {
				done <- result{got, fmt.Errorf("read %d bytes, want 4", n)}
				return
			}
			k := binary.BigEndian.Uint32(buf)
			if k == sentinel {
				done <- result{got, nil}
				return
			}
			got = append(got, k)
			read.Add(1)
		}
	}()
	return func() []uint32 {
		t.Helper()
		testwait.Eventually(t, 10*time.Second, "netem delivers or drops every packet", func() error {
			if s := c.Stats(); s.Written != s.Dropped+s.Overflow+s.Delivered+s.Failed {
				return fmt.Errorf("stats %+v", s)
			}
			return nil
		})
		testwait.Eventually(t, 10*time.Second, "every delivered packet is read", func() error {
			select {
			case r := <-done: // the reader stopped early: report why
				done <- r
				return nil
			default:
			}
			if n, want := read.Load(), c.Stats().Delivered-before; n < want {
				return fmt.Errorf("read %d of %d delivered", n, want)
			}
			return nil
		})
		if _, err := c.PacketConn.WriteTo(binary.BigEndian.AppendUint32(nil, sentinel), conn.LocalAddr()); err != nil {
			t.Fatalf("write the sentinel: %v", err)
		}
		r := <-done
		if r.err != nil {
			t.Fatalf("after %d packets: %v", len(r.got), r.err)
		}
		return r.got
	}
}

func send(t *testing.T, c *Conn, to net.Addr, n int) {
	t.Helper()
	for i := range n {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(i))
		if _, err := c.WriteTo(b[:], to); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
}

func TestImpairments(t *testing.T) {
	tests := []struct {
		name           string
		cfg            Config
		n              int
		minGot, maxGot int
		wantReordered  bool
	}{
		{name: "clean", cfg: Config{}, n: 500, minGot: 500, maxGot: 500},
		{name: "loss 10%", cfg: Config{Loss: 0.10, Seed: 1}, n: 1000, minGot: 850, maxGot: 950},
		{name: "loss all", cfg: Config{Loss: 1, Seed: 1}, n: 100, minGot: 0, maxGot: 0},
		{name: "reorder", cfg: Config{Reorder: 0.2, ReorderDelay: 20 * time.Millisecond, Seed: 2}, n: 500, minGot: 500, maxGot: 500, wantReordered: true},
		{name: "jitter", cfg: Config{Delay: time.Millisecond, Jitter: 10 * time.Millisecond, Seed: 3}, n: 500, minGot: 500, maxGot: 500, wantReordered: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := udpPair(t)
			c, err := Wrap(a, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			stop := receive(t, c, b)
			send(t, c, b.LocalAddr(), tt.n)
			got := stop()
			if len(got) < tt.minGot || len(got) > tt.maxGot {
				t.Errorf("received %d of %d packets, want %d..%d (stats %+v)", len(got), tt.n, tt.minGot, tt.maxGot, c.Stats())
			}
			inversions := 0
			for i := 1; i < len(got); i++ {
				if got[i] < got[i-1] {
					inversions++
				}
			}
			if tt.wantReordered && inversions == 0 {
				t.Errorf("no packet arrived out of order, want some")
			}
			if !tt.wantReordered && inversions != 0 {
				t.Errorf("%d packets arrived out of order, want none", inversions)
			}
		})
	}
}

func TestDelay(t *testing.T) {
	a, b := udpPair(t)
	c, err := Wrap(a, Config{Delay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	send(t, c, b.LocalAddr(), 1)
	b.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := b.ReadFrom(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("packet arrived after %v, want at least 50ms", d)
	}
}

func TestSeedReplays(t *testing.T) {
	drops := func() uint64 {
		a, b := udpPair(t)
		c, err := Wrap(a, Config{Loss: 0.3, Seed: 42})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		send(t, c, b.LocalAddr(), 300)
		return c.Stats().Dropped
	}
	if x, y := drops(), drops(); x != y {
		t.Errorf("same seed dropped %d then %d packets, want equal", x, y)
	}
}

func TestQueueLimit(t *testing.T) {
	a, b := udpPair(t)
	c, err := Wrap(a, Config{Delay: time.Hour, QueueLimit: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send(t, c, b.LocalAddr(), 25)
	if s := c.Stats(); s.Overflow != 15 {
		t.Errorf("overflow %d, want 15 (stats %+v)", s.Overflow, s)
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Loss: -0.1}, {Loss: 1.5}, {Reorder: 2}, {Delay: -1}} {
		if _, err := Wrap(nil, cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("Wrap(%+v) error %v, want ErrBadConfig", cfg, err)
		}
	}
}

func TestCloseIdempotentNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	a, _ := udpPair(t)
	c, err := Wrap(a, Config{Delay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.WriteTo([]byte{1}, a.LocalAddr())
	if err := c.Close(); err != nil {
		t.Errorf("first Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	if _, err := c.WriteTo([]byte{1}, a.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close: %v, want net.ErrClosed", err)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines %d after Close, %d before", after, before)
	}
}

func TestUpdateCutsAndHeals(t *testing.T) {
	a, b := udpPair(t)
	c, err := Wrap(a, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	steps := []struct {
		name string
		cfg  Config
		want int
	}{
		{"clean", Config{}, 20},
		{"cut", Config{Loss: 1}, 0},
		{"healed", Config{}, 20},
	}
	for _, st := range steps {
		if err := c.Update(st.cfg); err != nil {
			t.Fatalf("%s: Update: %v", st.name, err)
		}
		stop := receive(t, c, b)
		send(t, c, b.LocalAddr(), 20)
		if got := len(stop()); got != st.want {
			t.Errorf("%s: received %d of 20 packets, want %d", st.name, got, st.want)
		}
	}
	if err := c.Update(Config{Loss: 2}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("Update with loss 2: %v, want ErrBadConfig", err)
	}
}
