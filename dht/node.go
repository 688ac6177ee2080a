package dht

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Network is what the DHT sends through. The overlay's DHT community
// satisfies it by wrapping payload in a signed IPv8 message. Send may keep
// payload; it should not block for long (the datagram layer drops rather
// than waits): Run's goroutine calls it.
type Network interface {
	Send(to netip.AddrPort, payload []byte) error
}

// Node drives a Core with real time over a Network, following the lifecycle
// of docs/architecture.md: New builds it and starts nothing; Run owns its
// one goroutine, the only one that touches the Core; other goroutines talk
// to it through two bounded channels (received payloads, API calls). Its
// methods are safe for concurrent use.
type Node struct {
	// Set by New, then read-only.
	net     Network
	log     *slog.Logger
	self    identity.PeerID
	maxProv int
	// inbox carries received payloads to Run, so that HandleMessage never
	// blocks the overlay's reader. Capacity inboxSize; when full, new
	// payloads are dropped and counted in inboxDrops.
	inbox chan inbound
	// calls carries API calls to Run. Capacity callsSize; callers block
	// (bounded by their ctx) while it is full.
	calls   chan func(now time.Time)
	done    chan struct{} // closed when Run has returned
	started atomic.Bool

	// Owned by Run's goroutine.
	core *Core
	subs map[LookupID]*subscription
	acts []Action

	// Published by Run after every step, for any goroutine.
	snapMu    sync.Mutex
	counters  Counters
	tableSize int

	sendErrors atomic.Uint64
	inboxDrops atomic.Uint64
}

// inboxSize is the capacity of Node.inbox, in payloads (at most about
// 1.2 MB of copies).
const inboxSize = 1024

// inboxBatch is how many queued payloads Run handles before it sends what
// they produced.
const inboxBatch = 64

// callsSize is the capacity of Node.calls.
const callsSize = 64

type inbound struct {
	from    netip.AddrPort
	sender  identity.PublicKey
	payload []byte
}

// subscription is a caller waiting on a lookup. Run's goroutine owns it
// until it closes done.
type subscription struct {
	providers chan Provider // FindProviders only; capacity MaxProvidersPerLookup
	done      chan struct{} // closed when the lookup ends
	err       error         // set before done is closed
	id        LookupID      // set by Run when the lookup starts
	ended     bool          // Run's goroutine only
	stop      func() bool   // unregisters the cancel-on-ctx hook, if any
}

// New makes a Node for the holder of signer. It starts nothing: call Run.
// Feed it received payloads with HandleMessage.
func New(cfg Config, signer Signer, nw Network) (*Node, error) {
	var seed [16]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("dht: seeding: %w", err)
	}
	rng := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	core, err := NewCore(cfg, signer, rng, time.Now())
	if err != nil {
		return nil, err
	}
	return &Node{
		net: nw, log: core.cfg.Logger, self: core.Self(), maxProv: core.cfg.MaxProvidersPerLookup,
		inbox: make(chan inbound, inboxSize), calls: make(chan func(time.Time), callsSize),
		done: make(chan struct{}), core: core, subs: make(map[LookupID]*subscription),
	}, nil
}

// Self returns the node's Kademlia ID.
func (n *Node) Self() identity.PeerID { return n.self }

// Counters returns the Core's counters as of Run's last step.
func (n *Node) Counters() Counters {
	n.snapMu.Lock()
	defer n.snapMu.Unlock()
	return n.counters
}

// TableSize returns the number of nodes in the routing table as of Run's
// last step.
func (n *Node) TableSize() int {
	n.snapMu.Lock()
	defer n.snapMu.Unlock()
	return n.tableSize
}

// Stats is the driver's view of what the DHT dropped or failed to send,
// beside the Core's Counters; the metrics owner exports it.
type Stats struct {
	Counters
	InboxDrops uint64 // received payloads dropped: the inbox was full
	SendErrors uint64 // sends the Network refused
	TableSize  int
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	n.snapMu.Lock()
	s := Stats{Counters: n.counters, TableSize: n.tableSize}
	n.snapMu.Unlock()
	s.InboxDrops, s.SendErrors = n.inboxDrops.Load(), n.sendErrors.Load()
	return s
}

// SendErrors returns how many sends the Network refused.
func (n *Node) SendErrors() uint64 { return n.sendErrors.Load() }

// InboxDrops returns how many received payloads were dropped because the
// node was not keeping up.
func (n *Node) InboxDrops() uint64 { return n.inboxDrops.Load() }

// SetAddrs sets the addresses put in our provider records. It returns
// ErrClosed once Run has returned.
func (n *Node) SetAddrs(addrs []netip.AddrPort) error {
	addrs = append([]netip.AddrPort(nil), addrs...)
	return n.do(context.Background(), func(time.Time) { n.core.SetAddrs(addrs) })
}

// Closest returns up to k nodes of the routing table closest to target.
func (n *Node) Closest(ctx context.Context, target Key, k int) ([]Contact, error) {
	ch := make(chan []Contact, 1)
	if err := n.do(ctx, func(time.Time) { ch <- n.core.Closest(target, k) }); err != nil {
		return nil, err
	}
	select {
	case cs := <-ch:
		return cs, nil
	case <-n.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// HandleMessage takes one DHT payload received from `from` and signed (at
// the datagram layer) by sender. It copies payload and queues it for Run;
// it never blocks. When the queue is full the payload is dropped and
// counted (InboxDrops).
func (n *Node) HandleMessage(from netip.AddrPort, sender identity.PublicKey, payload []byte) {
	if len(payload) > MaxMessageSize {
		payload = payload[:MaxMessageSize+1] // enough for the core to count it as oversized
	}
	select {
	case n.inbox <- inbound{from: from, sender: sender, payload: append([]byte(nil), payload...)}:
	default:
		n.inboxDrops.Add(1)
	}
}

// do hands f to Run's goroutine. It returns ErrClosed when Run has
// returned, or ctx's cause when ctx ends first.
func (n *Node) do(ctx context.Context, f func(now time.Time)) error {
	select {
	case n.calls <- f:
		return nil
	case <-n.done:
		return ErrClosed
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Run owns the node's goroutine: it feeds the Core received payloads, API
// calls and timer ticks, sends what the Core produces and delivers its
// events. It returns nil when ctx is done; pending lookups then end with
// ErrClosed, and later API calls return ErrClosed. Run may be called once.
func (n *Node) Run(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("dht: Run called twice")
	}
	defer close(n.done)
	defer n.closeSubs()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next := n.flush()
		t.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return nil
		case in := <-n.inbox:
			n.handleInbox(in)
		case f := <-n.calls:
			f(time.Now())
		case <-t.C:
			n.core.Tick(time.Now())
		}
	}
}

// handleInbox feeds first and up to inboxBatch-1 more queued payloads to
// the core.
func (n *Node) handleInbox(first inbound) {
	now := time.Now()
	n.core.HandleMessage(now, first.from, first.sender, first.payload)
	for range inboxBatch - 1 {
		select {
		case in := <-n.inbox:
			n.core.HandleMessage(now, in.from, in.sender, in.payload)
		default:
			return
		}
	}
}

// flush carries out the Core's actions, publishes its counters and returns
// its next deadline.
func (n *Node) flush() time.Time {
	var next time.Time
	n.acts, next = n.core.Ready(n.acts[:0])
	for i := range n.acts {
		a := &n.acts[i]
		switch a.Kind {
		case ActionSend:
			if err := n.net.Send(a.Send.To, a.Send.Payload); err != nil {
				if k := n.sendErrors.Add(1); k&(k-1) == 0 { // logged at powers of two only
					n.log.Debug("dht send failed", "addr", a.Send.To, "err", err, "failures", k)
				}
			}
		case ActionEvent:
			n.dispatch(a.Event)
		}
		*a = Action{} // drop references to payloads and contacts
	}
	n.snapMu.Lock()
	n.counters, n.tableSize = n.core.Counters(), n.core.TableSize()
	n.snapMu.Unlock()
	return next
}

// dispatch delivers an event to its subscription. It never blocks: a
// provider channel has room for every provider a lookup reports.
func (n *Node) dispatch(e Event) {
	s := n.subs[e.Lookup]
	if s == nil {
		return
	}
	switch e.Kind {
	case EventProvider:
		if s.providers != nil {
			select {
			case s.providers <- e.Provider:
			default: // cannot happen: capacity is the per-lookup limit
			}
		}
	case EventDone:
		n.endSub(s, e.Err)
	}
}

// endSub closes a subscription once. Run's goroutine only.
func (n *Node) endSub(s *subscription, err error) {
	if s.ended {
		return
	}
	s.ended = true
	if s.stop != nil {
		s.stop()
	}
	delete(n.subs, s.id)
	s.err = err
	if s.providers != nil {
		close(s.providers)
	}
	close(s.done)
}

// closeSubs ends every pending lookup with ErrClosed as Run returns.
func (n *Node) closeSubs() {
	for _, s := range n.subs {
		n.endSub(s, ErrClosed)
	}
}

// start hands a lookup to Run: begin starts it on the Core. It returns an
// error when the call never reached Run (ErrClosed, or ctx's cause).
func (n *Node) start(ctx context.Context, s *subscription, begin func(now time.Time) LookupID) error {
	return n.do(ctx, func(now time.Time) {
		s.id = begin(now)
		n.subs[s.id] = s
	})
}

// cancelSub asks Run to cancel s's lookup with cause.
func (n *Node) cancelSub(s *subscription, cause error) {
	n.do(context.Background(), func(time.Time) {
		if n.subs[s.id] == s {
			n.core.Cancel(s.id)
			n.endSub(s, fmt.Errorf("%w: %w", ErrCanceled, cause))
		}
	})
}

// wait blocks until s's lookup ends, ctx ends (the lookup is cancelled) or
// Run returns.
func (n *Node) wait(ctx context.Context, s *subscription) error {
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		n.cancelSub(s, context.Cause(ctx))
	case <-n.done:
	}
	select {
	case <-s.done:
		return s.err
	case <-n.done:
		select {
		case <-s.done: // ended as Run returned
			return s.err
		default: // queued but never started
			return ErrClosed
		}
	}
}

// Bootstrap pings addrs and looks up our own ID through those that answer.
// It returns ErrNoContacts when nobody answered.
func (n *Node) Bootstrap(ctx context.Context, addrs []netip.AddrPort) error {
	addrs = append([]netip.AddrPort(nil), addrs...)
	s := &subscription{done: make(chan struct{})}
	err := n.start(ctx, s, func(now time.Time) LookupID { return n.core.Bootstrap(now, addrs) })
	if err == nil {
		err = n.wait(ctx, s)
	}
	if err != nil {
		return fmt.Errorf("dht: bootstrap: %w", err)
	}
	return nil
}

// Provide announces that we serve id and keeps republishing it until
// StopProviding or Run returns. It returns once the record is stored on
// the k closest nodes that answered, or ErrNotStored if none took it.
func (n *Node) Provide(ctx context.Context, id Key) error {
	s := &subscription{done: make(chan struct{})}
	err := n.start(ctx, s, func(now time.Time) LookupID { return n.core.Provide(now, id) })
	if err == nil {
		err = n.wait(ctx, s)
	}
	if err != nil {
		return fmt.Errorf("dht: provide: %w", err)
	}
	return nil
}

// StopProviding stops republishing id.
func (n *Node) StopProviding(id Key) {
	n.do(context.Background(), func(time.Time) { n.core.StopProviding(id) })
}

// FindProviders looks up providers of id. Verified providers arrive on the
// channel as they are found, each once, at most MaxProvidersPerLookup; the
// channel is closed when the lookup ends, ctx ends or Run returns. The
// caller need not drain it: its capacity holds every result.
func (n *Node) FindProviders(ctx context.Context, id Key) <-chan Provider {
	s := &subscription{done: make(chan struct{}), providers: make(chan Provider, n.maxProv)}
	// When ctx ends first, cancel the lookup. The hook runs on a
	// short-lived goroutine that ends as soon as Run takes the call or has
	// returned; endSub unregisters it.
	s.stop = context.AfterFunc(ctx, func() { n.cancelSub(s, context.Cause(ctx)) })
	if err := n.start(ctx, s, func(now time.Time) LookupID { return n.core.FindProviders(now, id) }); err != nil {
		s.stop()
		ch := make(chan Provider)
		close(ch)
		return ch
	}
	return s.providers
}
