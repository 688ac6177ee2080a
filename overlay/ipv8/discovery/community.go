package discovery

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/overlay/ipv8"
	"golang.org/x/sync/errgroup"
)

// eventQueueSize bounds events waiting for Run to deliver them; past it
// the newest are dropped and counted.
const eventQueueSize = 1024

// Community drives a Core: it registers with an Endpoint, feeds the core
// received messages and timer ticks, and sends what the core asks for.
type Community struct {
	// Set at construction, read-only after.
	ep  *ipv8.Endpoint
	cfg Config

	mu            sync.Mutex // guards the fields below
	core          *Core
	events        []Event // waiting for Run to deliver, bounded by eventQueueSize
	droppedEvents uint64
	sendErrors    uint64

	wake chan struct{} // capacity 1: events are waiting
}

// New creates the walk for ep and registers it in cfg.Community.
func New(ep *ipv8.Endpoint, cfg Config) (*Community, error) {
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	core, err := NewCore(ep.Public(), cfg, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)))
	if err != nil {
		return nil, err
	}
	c := &Community{ep: ep, cfg: core.Config(), core: core, wake: make(chan struct{}, 1)}
	if err := ep.Register(c.cfg.Community, c); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return c, nil
}

// Framing implements ipv8.Community.
func (c *Community) Framing(msgID byte) ipv8.Framing { return Framing(msgID) }

// HandleMessage implements ipv8.Community.
func (c *Community) HandleMessage(m *ipv8.Message) {
	c.mu.Lock()
	out := c.core.Handle(time.Now(), m)
	sends := c.takeLocked(out)
	c.mu.Unlock()
	c.send(sends)
}

// takeLocked copies out's sends (the core reuses its buffers) and queues
// its events for Run.
func (c *Community) takeLocked(out *Output) []Send {
	for _, e := range out.Events {
		if len(c.events) >= eventQueueSize {
			c.droppedEvents++
			continue
		}
		c.events = append(c.events, e)
	}
	if len(out.Events) > 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return append([]Send(nil), out.Sends...)
}

func (c *Community) send(sends []Send) {
	for _, s := range sends {
		var err error
		if s.Unsigned {
			err = c.ep.SendUnsigned(s.To, c.cfg.Community, s.MsgID, s.Payload)
		} else {
			err = c.ep.Send(s.To, c.cfg.Community, s.MsgID, s.Payload)
		}
		if err != nil {
			c.mu.Lock()
			c.sendErrors++
			c.mu.Unlock()
			c.cfg.Logger.Debug("discovery: send failed", "to", s.To, "msg", s.MsgID, "err", err)
		}
	}
}

// SetLAN sets this node's LAN address (the overlay Node calls it with
// its socket's address).
func (c *Community) SetLAN(a netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.core.SetLAN(a)
}

// WalkTo sends an introduction request to addr now: for addresses from
// links, LAN announcements or the command line.
func (c *Community) WalkTo(addr netip.AddrPort) {
	c.mu.Lock()
	sends := c.takeLocked(c.core.WalkTo(time.Now(), addr))
	c.mu.Unlock()
	c.send(sends)
}

// Peers returns a snapshot of the peer table.
func (c *Community) Peers() []Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.core.Peers()
}

// NumPeers returns the table's size.
func (c *Community) NumPeers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.core.NumPeers()
}

// DriverStats adds the driver's own counters to the core's.
type DriverStats struct {
	Stats
	DroppedEvents uint64 // events lost to a full queue
	SendErrors    uint64
}

// Stats returns the counters.
func (c *Community) Stats() DriverStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return DriverStats{Stats: c.core.Stats(), DroppedEvents: c.droppedEvents, SendErrors: c.sendErrors}
}

// Addresses returns this node's LAN address and its WAN address as
// learned from responses.
func (c *Community) Addresses() (lan, wan netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.core.Addresses()
}

// Run walks until ctx ends, then unregisters from the endpoint and
// returns context.Cause(ctx) (or the LAN announcer's error). Every
// goroutine it starts has ended when it returns. Run must be called at
// most once.
func (c *Community) Run(ctx context.Context) error {
	defer c.ep.Unregister(c.cfg.Community, c)
	g, ctx := errgroup.WithContext(ctx)
	if c.cfg.LAN.Enabled {
		g.Go(func() error { return c.runLAN(ctx) })
	}
	g.Go(func() error { return c.loop(ctx) })
	return g.Wait()
}

func (c *Community) loop(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			c.deliver()
			return context.Cause(ctx)
		case <-c.wake:
		case <-timer.C:
			c.mu.Lock()
			now := time.Now()
			sends := c.takeLocked(c.core.Tick(now))
			next := c.core.NextDeadline()
			c.mu.Unlock()
			c.send(sends)
			timer.Reset(max(next.Sub(time.Now()), time.Millisecond))
		}
		c.deliver()
	}
}

// deliver hands queued events to cfg.OnEvent.
func (c *Community) deliver() {
	c.mu.Lock()
	evs := c.events
	c.events = nil
	c.mu.Unlock()
	if c.cfg.OnEvent == nil {
		return
	}
	for _, e := range evs {
		c.cfg.OnEvent(e)
	}
}
