package community

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
	"github.com/shoal-p2p/shoal/overlay/ipv8/discovery"
)

// Errors.
var (
	ErrStarted      = errors.New("community: message types must be declared before Run")
	ErrDeclared     = errors.New("community: message ID already declared")
	ErrWalkMessage  = errors.New("community: message ID belongs to the random walk")
	ErrUndeclared   = errors.New("community: message type not declared")
	ErrWrongFraming = errors.New("community: message type declared with another framing")
)

// Config configures a community. The zero value of every field but ID
// means its default.
type Config struct {
	// ID is the community's 20-byte ID. Required.
	ID ipv8.CommunityID
	// Walk configures the community's own random walk: its peer target
	// and maximum, churn timeouts and bootstrap addresses (defaults:
	// py-ipv8's). Walk.Community is set to ID.
	Walk discovery.Config
	// SharedWalk, when set, is a walk of the same ID that another part
	// runs (the node's discovery walk, to add messages to py-ipv8's
	// discovery community): the community uses its peers and runs no
	// walk of its own.
	SharedWalk *discovery.Community
	// QueueSize bounds received messages waiting for the handler
	// goroutine. Default 256.
	QueueSize int
	// RequestTimeout bounds Request when its context has no earlier
	// deadline. Default 5 s.
	RequestTimeout time.Duration
	// Logger receives debug logs of dropped messages. Nil discards.
	Logger *slog.Logger
}

// MessageType declares one message of a community: its ID, its framing
// and how its payload of type T is written and read. Decode must check
// every length and reject trailing bytes (ipv8.FieldReader.Done does).
type MessageType[T any] struct {
	ID      byte
	Framing ipv8.Framing
	Encode  func(b []byte, v *T) ([]byte, error)
	Decode  func(p []byte) (T, error)
}

// Sender is where a message came from.
type Sender struct {
	Addr netip.AddrPort
	// Key is the sender's key for signed messages, zero for unsigned.
	Key identity.PublicKey
	// GlobalTime is the sender's Lamport time for the framings that
	// carry one, else zero.
	GlobalTime uint64
}

// Community is one application community on an endpoint.
type Community struct {
	// Set by New, read-only after.
	ep   *ipv8.Endpoint
	cfg  Config
	walk *discovery.Community
	own  bool // walk is ours to run
	in   chan ipv8.Message

	mu       sync.Mutex // guards types and started
	types    map[byte]*declared
	started  bool
	framings [256]atomic.Uint32 // ipv8.Framing per message ID, read lock-free by the endpoint

	handled, undecodable, queueFull, unhandled atomic.Uint64
}

type declared struct {
	framing ipv8.Framing
	handle  func(m *ipv8.Message) error // nil: declared without a handler
}

// New builds a community on ep. It starts nothing.
func New(ep *ipv8.Endpoint, cfg Config) (*Community, error) {
	if cfg.ID == (ipv8.CommunityID{}) {
		return nil, errors.New("community: config: ID is required")
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Community{ep: ep, cfg: cfg, types: map[byte]*declared{}, in: make(chan ipv8.Message, cfg.QueueSize)}
	if cfg.SharedWalk != nil {
		if cfg.SharedWalk.ID() != cfg.ID {
			return nil, fmt.Errorf("community: shared walk is of community %s, not %s", cfg.SharedWalk.ID(), cfg.ID)
		}
		c.walk = cfg.SharedWalk
		return c, nil
	}
	wc := cfg.Walk
	wc.Community = cfg.ID
	if wc.Logger == nil {
		wc.Logger = cfg.Logger
	}
	w, err := discovery.New(ep, wc)
	if err != nil {
		return nil, fmt.Errorf("community %s: %w", cfg.ID, err)
	}
	c.walk, c.own = w, true
	return c, nil
}

// ID returns the community's ID.
func (c *Community) ID() ipv8.CommunityID { return c.cfg.ID }

// Declare makes message type mt known without a handler: for the
// answers of Request. Unsolicited messages of that type are dropped and
// counted.
func Declare[T any](c *Community, mt MessageType[T]) error { return c.declare(mt.ID, mt.Framing, nil) }

// Handle declares message type mt and calls h for every message of that
// type received, decoded and (for signed framings) verified, on the
// community's handler goroutine, one message at a time. Messages whose
// payload does not decode are dropped and counted.
func Handle[T any](c *Community, mt MessageType[T], h func(from Sender, v T)) error {
	if mt.Decode == nil || h == nil {
		return fmt.Errorf("community: message %d: Decode and the handler are required", mt.ID)
	}
	return c.declare(mt.ID, mt.Framing, func(m *ipv8.Message) error {
		v, err := mt.Decode(m.Payload)
		if err != nil {
			return err
		}
		h(Sender{Addr: m.From, Key: m.Key, GlobalTime: m.GlobalTime}, v)
		return nil
	})
}

func (c *Community) declare(id byte, f ipv8.Framing, h func(*ipv8.Message) error) error {
	if f == ipv8.FramingUnknown {
		return fmt.Errorf("community: message %d: no framing", id)
	}
	if discovery.Framing(id) != ipv8.FramingUnknown {
		return fmt.Errorf("%w: %d", ErrWalkMessage, id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return ErrStarted
	}
	if _, ok := c.types[id]; ok {
		return fmt.Errorf("%w: %d", ErrDeclared, id)
	}
	c.types[id] = &declared{framing: f, handle: h}
	c.framings[id].Store(uint32(f))
	return nil
}

// Framing implements ipv8.Community for the declared messages.
func (c *Community) Framing(msgID byte) ipv8.Framing { return ipv8.Framing(c.framings[msgID].Load()) }

// HandleMessage implements ipv8.Community: it queues a copy of m for the
// handler goroutine, or drops and counts it when the queue is full.
func (c *Community) HandleMessage(m *ipv8.Message) {
	cp := *m
	cp.Payload = append([]byte(nil), m.Payload...)
	select {
	case c.in <- cp:
	default:
		c.queueFull.Add(1)
	}
}

// Run registers the declared messages with the endpoint, runs the walk
// (unless shared) and the handler goroutine until ctx ends, then
// unregisters and returns context.Cause(ctx), or the first error. It
// returns after every goroutine it started has exited. Run must be
// called at most once.
func (c *Community) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("community: Run called twice")
	}
	c.started = true
	c.mu.Unlock()
	if err := c.ep.Register(c.cfg.ID, c); err != nil {
		return fmt.Errorf("community: %w", err)
	}
	defer c.ep.Unregister(c.cfg.ID, c)
	g, ctx := errgroup.WithContext(ctx)
	if c.own {
		g.Go(func() error { return c.walk.Run(ctx) })
	}
	g.Go(func() error { return c.serve(ctx) })
	return g.Wait()
}

// serve is the handler goroutine.
func (c *Community) serve(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case m := <-c.in:
			c.dispatch(&m)
		}
	}
}

func (c *Community) dispatch(m *ipv8.Message) {
	c.mu.Lock()
	d := c.types[m.ID]
	c.mu.Unlock()
	if d == nil || d.handle == nil {
		c.unhandled.Add(1)
		return
	}
	if err := d.handle(m); err != nil {
		c.undecodable.Add(1)
		c.cfg.Logger.Debug("community: dropped message", "peer", m.From, "err", err)
		return
	}
	c.handled.Add(1)
}

// Send sends v to addr as message type mt, signed or not as mt's framing
// says.
func Send[T any](c *Community, to netip.AddrPort, mt MessageType[T], v T) error {
	p, err := encode(c, mt, &v)
	if err != nil {
		return err
	}
	return c.ep.SendFramed(to, c.cfg.ID, mt.ID, mt.Framing, p)
}

// Broadcast sends v as message type mt to every peer of the community's
// walk, and returns how many sends succeeded and the first error.
func Broadcast[T any](c *Community, mt MessageType[T], v T) (int, error) {
	p, err := encode(c, mt, &v)
	if err != nil {
		return 0, err
	}
	var n int
	var first error
	for _, peer := range c.walk.Peers() {
		if err := c.ep.SendFramed(peer.Addr, c.cfg.ID, mt.ID, mt.Framing, p); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		n++
	}
	return n, first
}

// Request sends q to addr as message type qt and waits for the first
// message of type rt from addr for which match (nil: any) returns true,
// until ctx ends or Config.RequestTimeout passes. rt must be declared
// (Declare, or Handle); the answer goes to the requester, not to the
// handler. match runs on the endpoint's receiving goroutine under its
// lock: it must be quick.
func Request[Q, R any](ctx context.Context, c *Community, to netip.AddrPort, qt MessageType[Q], q Q, rt MessageType[R], match func(R) bool) (R, Sender, error) {
	var zero R
	p, err := encode(c, qt, &q)
	if err != nil {
		return zero, Sender{}, err
	}
	if err := c.check(rt.ID, rt.Framing); err != nil {
		return zero, Sender{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	var answer R // written by match before the endpoint hands the message over
	m, err := c.ep.RequestFramed(ctx, to, c.cfg.ID, qt.ID, qt.Framing, p, func(m *ipv8.Message) bool {
		if m.ID != rt.ID {
			return false
		}
		v, err := rt.Decode(m.Payload)
		if err != nil || (match != nil && !match(v)) {
			return false
		}
		answer = v
		return true
	})
	if err != nil {
		return zero, Sender{}, err
	}
	return answer, Sender{Addr: m.From, Key: m.Key, GlobalTime: m.GlobalTime}, nil
}

func encode[T any](c *Community, mt MessageType[T], v *T) ([]byte, error) {
	if err := c.check(mt.ID, mt.Framing); err != nil {
		return nil, err
	}
	if mt.Encode == nil {
		return nil, fmt.Errorf("community: message %d: no Encode", mt.ID)
	}
	p, err := mt.Encode(nil, v)
	if err != nil {
		return nil, fmt.Errorf("community: encoding message %d: %w", mt.ID, err)
	}
	if n := mt.Framing.Overhead() + len(p); n > ipv8.MaxDatagramSize {
		return nil, fmt.Errorf("%w: message %d would be %d bytes, limit %d", ipv8.ErrTooLarge, mt.ID, n, ipv8.MaxDatagramSize)
	}
	return p, nil
}

// check reports whether message id is declared with framing f.
func (c *Community) check(id byte, f ipv8.Framing) error {
	switch got := c.Framing(id); {
	case got == ipv8.FramingUnknown:
		return fmt.Errorf("%w: %d", ErrUndeclared, id)
	case got != f:
		return fmt.Errorf("%w: %d is %v, not %v", ErrWrongFraming, id, got, f)
	}
	return nil
}

// Peers returns the peers the community's walk knows.
func (c *Community) Peers() []discovery.Peer { return c.walk.Peers() }

// WalkTo asks the walk to send an introduction request to addr.
func (c *Community) WalkTo(addr netip.AddrPort) { c.walk.WalkTo(addr) }

// Addresses returns this node's LAN and WAN addresses as the walk
// announces them.
func (c *Community) Addresses() (lan, wan netip.AddrPort) { return c.walk.Addresses() }

// Stats counts a community's messages: the endpoint's counters for its
// ID, the handler side's own, and its walk's.
type Stats struct {
	ipv8.CommunityStats
	Handled            uint64 // messages a handler received
	DroppedUndecodable uint64 // payloads that did not decode (truncated fields, trailing bytes)
	DroppedQueueFull   uint64 // messages lost to a full handler queue
	DroppedUnhandled   uint64 // messages declared without a handler and not a Request's answer
	Peers              int
	Walk               discovery.DriverStats
}

// Stats returns the counters.
func (c *Community) Stats() Stats {
	es, _ := c.ep.CommunityStats(c.cfg.ID)
	return Stats{
		CommunityStats:     es,
		Handled:            c.handled.Load(),
		DroppedUndecodable: c.undecodable.Load(),
		DroppedQueueFull:   c.queueFull.Load(),
		DroppedUnhandled:   c.unhandled.Load(),
		Peers:              c.walk.NumPeers(),
		Walk:               c.walk.Stats(),
	}
}
