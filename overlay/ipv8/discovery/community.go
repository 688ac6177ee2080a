package discovery

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/overlay/ipv8"
	"golang.org/x/sync/errgroup"
)

var errRunTwice = errors.New("discovery: Run called twice")

// Queue bounds between the endpoint's goroutine (and API callers) and
// Run's owner goroutine. Past them, the newest items are dropped and
// counted: the walk recovers from a lost datagram as from a lost packet.
const (
	inboxSize  = 1024 // received messages waiting for the owner goroutine
	walkToSize = 64   // WalkTo addresses waiting for it
	// routeCacheSize bounds the interface lookups cached for a wildcard
	// LAN address; past it the cache is cleared.
	routeCacheSize = 1024
)

// Community drives a Core: Run's one goroutine owns the core, feeds it
// received messages, WalkTo requests and timer ticks, and carries out
// the actions Ready returns (sends through the endpoint, events to
// Config.OnEvent). Other goroutines reach it only through bounded
// channels and read a snapshot it publishes after every step.
type Community struct {
	// Set by New, read-only after.
	ep  *ipv8.Endpoint
	cfg Config

	// Owned by Run's goroutine.
	core *Core

	inbox  chan ipv8.Message        // from HandleMessage; payloads are copies
	walkTo chan netip.AddrPort      // from WalkTo
	snap   atomic.Pointer[snapshot] // published by Run's goroutine
	ran    atomic.Bool

	droppedInbox, droppedWalkTo, sendErrors atomic.Uint64
}

// snapshot is what Run's goroutine publishes for other goroutines.
type snapshot struct {
	peers    []Peer
	stats    Stats
	lan, wan netip.AddrPort
}

// New creates the walk for ep. It starts nothing: Run registers the
// community with ep and walks. cfg.LANAddress defaults to ep's socket
// address, and cfg.LocalAddrFor to a routing lookup.
func New(ep *ipv8.Endpoint, cfg Config) (*Community, error) {
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	if !cfg.LANAddress.IsValid() {
		cfg.LANAddress = ep.LocalAddr()
	}
	if cfg.LocalAddrFor == nil {
		cfg.LocalAddrFor = newRouteCache().lookup
	}
	if cfg.InLANSubnet == nil {
		cfg.InLANSubnet = interfaceSubnets()
	}
	core, err := NewCore(ep.Public(), cfg, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)))
	if err != nil {
		return nil, err
	}
	c := &Community{
		ep:     ep,
		cfg:    core.Config(),
		core:   core,
		inbox:  make(chan ipv8.Message, inboxSize),
		walkTo: make(chan netip.AddrPort, walkToSize),
	}
	c.publish()
	return c, nil
}

// Framing implements ipv8.Community.
func (c *Community) Framing(msgID byte) ipv8.Framing { return Framing(msgID) }

// HandleMessage implements ipv8.Community: it queues a copy of m for
// Run's goroutine, or drops and counts it when the queue is full.
func (c *Community) HandleMessage(m *ipv8.Message) {
	cp := *m
	cp.Payload = append([]byte(nil), m.Payload...)
	select {
	case c.inbox <- cp:
	default:
		c.droppedInbox.Add(1)
	}
}

// WalkTo asks Run's goroutine to send an introduction request to addr:
// for addresses from links, LAN announcements or the command line. It
// never blocks; past 64 waiting addresses, addr is dropped and counted.
func (c *Community) WalkTo(addr netip.AddrPort) {
	select {
	case c.walkTo <- addr:
	default:
		c.droppedWalkTo.Add(1)
	}
}

// Peers returns the peer table as of the walk's last step.
func (c *Community) Peers() []Peer { return append([]Peer(nil), c.snap.Load().peers...) }

// NumPeers returns the table's size as of the walk's last step.
func (c *Community) NumPeers() int { return len(c.snap.Load().peers) }

// DriverStats adds the driver's own counters to the core's.
type DriverStats struct {
	Stats
	DroppedMessages uint64 // received messages lost to a full queue
	DroppedWalkTo   uint64 // WalkTo addresses lost to a full queue
	SendErrors      uint64
}

// Stats returns the counters.
func (c *Community) Stats() DriverStats {
	return DriverStats{
		Stats:           c.snap.Load().stats,
		DroppedMessages: c.droppedInbox.Load(),
		DroppedWalkTo:   c.droppedWalkTo.Load(),
		SendErrors:      c.sendErrors.Load(),
	}
}

// Addresses returns this node's LAN address (a wildcard when the socket
// is bound to one) and its WAN address as learned from responses.
func (c *Community) Addresses() (lan, wan netip.AddrPort) {
	s := c.snap.Load()
	return s.lan, s.wan
}

// ID returns the community walked in.
func (c *Community) ID() ipv8.CommunityID { return c.cfg.Community }

// Run registers the community with the endpoint and walks until ctx
// ends, then unregisters it and returns context.Cause(ctx) (or the
// registration's or LAN announcer's error). Every goroutine it starts
// has ended when it returns. Run must be called at most once.
func (c *Community) Run(ctx context.Context) error {
	if c.ran.Swap(true) {
		return errRunTwice
	}
	if err := c.ep.Register(c.cfg.Community, c); err != nil {
		return err
	}
	defer c.ep.Unregister(c.cfg.Community, c)
	g, ctx := errgroup.WithContext(ctx)
	if c.cfg.LAN.Enabled {
		g.Go(func() error { return c.runLAN(ctx) })
	}
	g.Go(func() error { return c.loop(ctx) })
	return g.Wait()
}

// loop is the owner goroutine: one event in, then every action out.
func (c *Community) loop(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var actions []Action
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case m := <-c.inbox:
			c.core.Handle(time.Now(), &m)
		case a := <-c.walkTo:
			c.core.WalkTo(time.Now(), a)
		case <-timer.C:
			c.core.Tick(time.Now())
		}
		var next time.Time
		actions, next = c.core.Ready(actions[:0])
		c.carryOut(actions)
		clear(actions)
		c.publish()
		if !next.IsZero() {
			// Stop-and-reset is safe since Go 1.23: no stale tick.
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
	}
}

func (c *Community) carryOut(actions []Action) {
	for i := range actions {
		a := &actions[i]
		switch a.Kind {
		case ActionSend:
			s := &a.Send
			f := ipv8.FramingSigned
			if s.Unsigned {
				f = ipv8.FramingUnsigned
			}
			if err := c.ep.SendFramed(s.To, c.cfg.Community, s.MsgID, f, s.Payload); err != nil {
				c.sendErrors.Add(1)
				c.cfg.Logger.Debug("discovery: send failed", "peer", s.To, "err", err)
			}
		case ActionEvent:
			if c.cfg.OnEvent != nil {
				c.cfg.OnEvent(a.Event)
			}
		}
	}
}

// publish stores a snapshot for other goroutines. Only Run's goroutine
// (and New, before Run) calls it.
func (c *Community) publish() {
	lan, wan := c.core.Addresses()
	c.snap.Store(&snapshot{peers: c.core.Peers(), stats: c.core.Stats(), lan: lan, wan: wan})
}

// interfaceSubnets returns a test for "in a subnet of one of this
// host's interfaces", from the interfaces as they are now (loopback
// included). If they cannot be listed, every address counts as local:
// only public addresses are then learned as WAN.
func interfaceSubnets() func(netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return func(a netip.Addr) bool { return !isPublic(a) }
	}
	var nets []netip.Prefix
	for _, a := range addrs {
		if in, ok := a.(*net.IPNet); ok {
			ip, ok := netip.AddrFromSlice(in.IP)
			ones, _ := in.Mask.Size()
			if ok {
				nets = append(nets, netip.PrefixFrom(ip.Unmap(), ones).Masked())
			}
		}
	}
	return func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range nets {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
}

// routeCache finds the local interface address that reaches a
// destination, for a socket bound to a wildcard address.
type routeCache struct {
	m map[netip.Addr]netip.Addr // used by Run's goroutine only
}

func newRouteCache() *routeCache { return &routeCache{m: make(map[netip.Addr]netip.Addr)} }

// lookup asks the kernel's routing table which source address it would
// use towards dst: connecting a UDP socket sends nothing.
func (r *routeCache) lookup(dst netip.Addr) netip.Addr {
	if ip, ok := r.m[dst]; ok {
		return ip
	}
	var ip netip.Addr
	if conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9))); err == nil {
		ip = conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		conn.Close()
	}
	if len(r.m) >= routeCacheSize {
		clear(r.m)
	}
	r.m[dst] = ip
	return ip
}
