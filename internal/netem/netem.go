// Package netem wraps a net.PacketConn to simulate a bad network in tests:
// delay, jitter, loss and reordering, all drawn from a seeded random source
// so a failing run can be replayed. It needs no root and no kernel netem.
//
// Impairments apply to packets written through the wrapper (egress). Wrap
// both ends of a path for symmetric impairment. Reads pass through
// unchanged.
//
// Update changes the impairments at run time: Loss 1 cuts the link, as
// raft's test network cuts and heals.
//
// Goroutines: a Conn owns one delivery goroutine that writes delayed packets
// to the wrapped conn at their due time. Close stops it, waits for it and
// closes the wrapped conn. Packets still queued at Close are dropped.
//
// Bounds: at most Config.QueueLimit packets wait for delivery; a write
// beyond that is dropped (tail drop, as a full router queue would) and
// counted in Stats.Overflow.
package netem

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Config describes the impairments. The zero value passes packets through
// unchanged (but still through the delivery goroutine).
type Config struct {
	// Delay is added to every packet. Default 0.
	Delay time.Duration
	// Jitter adds a uniform random extra delay in [0, Jitter). Jitter
	// alone reorders packets. Default 0.
	Jitter time.Duration
	// Loss is the probability, from 0 to 1, that a packet is dropped.
	// Default 0.
	Loss float64
	// Reorder is the probability, from 0 to 1, that a packet is held back
	// by ReorderDelay more, so that later packets overtake it. Default 0.
	Reorder float64
	// ReorderDelay is the extra delay of a reordered packet. Default
	// 2*Delay, or 5 ms when Delay is zero.
	ReorderDelay time.Duration
	// Seed seeds the random source. Runs with the same seed and the same
	// sequence of writes make the same choices.
	Seed uint64
	// QueueLimit caps the packets waiting for delivery. Default 4096.
	QueueLimit int
}

// ErrBadConfig reports an out-of-range Config field.
var ErrBadConfig = errors.New("netem: bad config")

func (c Config) withDefaults() (Config, error) {
	if c.Loss < 0 || c.Loss > 1 || c.Reorder < 0 || c.Reorder > 1 {
		return c, fmt.Errorf("%w: loss %v and reorder %v must be in [0, 1]", ErrBadConfig, c.Loss, c.Reorder)
	}
	if c.Delay < 0 || c.Jitter < 0 || c.ReorderDelay < 0 || c.QueueLimit < 0 {
		return c, fmt.Errorf("%w: negative duration or queue limit", ErrBadConfig)
	}
	if c.ReorderDelay == 0 {
		c.ReorderDelay = 2 * c.Delay
		if c.ReorderDelay == 0 {
			c.ReorderDelay = 5 * time.Millisecond
		}
	}
	if c.QueueLimit == 0 {
		c.QueueLimit = 4096
	}
	return c, nil
}

// Stats counts what the wrapper did with written packets.
type Stats struct {
	Written   uint64 // packets handed to WriteTo
	Dropped   uint64 // dropped by Loss
	Overflow  uint64 // dropped because the queue was full
	Reordered uint64 // held back by ReorderDelay
	Delivered uint64 // written to the wrapped conn without error
	Failed    uint64 // the wrapped conn's WriteTo failed
}

// Conn is a net.PacketConn with simulated impairments on writes. It is
// safe for concurrent use.
type Conn struct {
	net.PacketConn

	wake chan struct{} // capacity 1: "the queue head may have changed"
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	// mu guards the fields below.
	mu     sync.Mutex
	cfg    Config
	rng    *rand.Rand
	queue  packetHeap
	seq    uint64
	stats  Stats
	closed bool
}

// Wrap returns pc with the impairments in cfg. The Conn owns pc from now on:
// Close closes it.
func Wrap(pc net.PacketConn, cfg Config) (*Conn, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Conn{
		PacketConn: pc,
		cfg:        cfg,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		rng:        rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
	}
	c.wg.Add(1)
	go c.deliver()
	return c, nil
}

// WriteTo queues p for delivery to addr after the configured delay, or drops
// it. It never blocks on the network and does not retain p. A dropped packet
// still reports success, as UDP would.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	c.stats.Written++
	if c.cfg.Loss > 0 && c.rng.Float64() < c.cfg.Loss {
		c.stats.Dropped++
		return len(p), nil
	}
	if len(c.queue) >= c.cfg.QueueLimit {
		c.stats.Overflow++
		return len(p), nil
	}
	d := c.cfg.Delay
	if c.cfg.Jitter > 0 {
		d += time.Duration(c.rng.Int64N(int64(c.cfg.Jitter)))
	}
	if c.cfg.Reorder > 0 && c.rng.Float64() < c.cfg.Reorder {
		d += c.cfg.ReorderDelay
		c.stats.Reordered++
	}
	c.seq++
	heap.Push(&c.queue, packet{due: time.Now().Add(d), seq: c.seq, b: append([]byte(nil), p...), to: addr})
	if c.queue[0].seq == c.seq {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Update replaces the impairments from now on, for example Loss 1 to cut
// the link and Loss 0 to heal it. Packets already queued keep their due
// time; the random source and its seed carry on. The zero fields of cfg
// take their defaults, as in Wrap.
func (c *Conn) Update(cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg = cfg
	return nil
}

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// SetReadBuffer passes through to the wrapped conn when it has the method,
// so that QUIC stacks can size the socket buffer.
func (c *Conn) SetReadBuffer(n int) error {
	if s, ok := c.PacketConn.(interface{ SetReadBuffer(int) error }); ok {
		return s.SetReadBuffer(n)
	}
	return errors.New("netem: wrapped conn has no SetReadBuffer")
}

// SetWriteBuffer passes through to the wrapped conn when it has the method.
func (c *Conn) SetWriteBuffer(n int) error {
	if s, ok := c.PacketConn.(interface{ SetWriteBuffer(int) error }); ok {
		return s.SetWriteBuffer(n)
	}
	return errors.New("netem: wrapped conn has no SetWriteBuffer")
}

// Close stops delivery, drops queued packets, waits for the delivery
// goroutine and closes the wrapped conn. It is idempotent; later calls
// return nil.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.queue = nil
	c.mu.Unlock()
	close(c.done)
	c.wg.Wait()
	return c.PacketConn.Close()
}

// deliver writes queued packets at their due time until Close.
func (c *Conn) deliver() {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		now := time.Now()
		var ready []packet
		for len(c.queue) > 0 && !c.queue[0].due.After(now) {
			ready = append(ready, heap.Pop(&c.queue).(packet))
		}
		wait := time.Hour
		if len(c.queue) > 0 {
			wait = c.queue[0].due.Sub(now)
		}
		c.mu.Unlock()

		var ok, failed uint64
		for _, p := range ready {
			if _, err := c.PacketConn.WriteTo(p.b, p.to); err != nil {
				failed++
			} else {
				ok++
			}
		}
		if len(ready) > 0 {
			c.mu.Lock()
			c.stats.Delivered += ok
			c.stats.Failed += failed
			c.mu.Unlock()
			continue // time passed while writing: look again
		}
		timer.Reset(wait)
		select {
		case <-c.done:
			return
		case <-c.wake:
		case <-timer.C:
		}
	}
}

type packet struct {
	due time.Time
	seq uint64 // ties keep write order
	b   []byte
	to  net.Addr
}

type packetHeap []packet

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(packet)) }
func (h *packetHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = packet{}
	*h = old[:len(old)-1]
	return p
}
