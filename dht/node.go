package dht

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
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
// than waits).
type Network interface {
	Send(to netip.AddrPort, payload []byte) error
}

// Node runs a Core with real time over a Network. It is safe for concurrent
// use. Its one goroutine fires the Core's timers and feeds it the payloads
// queued by HandleMessage; Close stops it and waits. Messages are sent on
// the goroutine that produced them (the loop or an API caller), outside the
// lock.
type Node struct {
	// Set by New, then read-only.
	net    Network
	log    *slog.Logger
	ctx    context.Context // lifetime; cancelled by Close
	cancel context.CancelCauseFunc
	kick   chan struct{} // capacity 1: "the deadline may have moved"
	// inbox carries received payloads to the loop goroutine, so that
	// HandleMessage never blocks the overlay's reader. Capacity inboxSize;
	// when full, new payloads are dropped and counted in inboxDrops.
	inbox chan inbound

	// mu guards everything below, and the Core.
	mu     sync.Mutex
	core   *Core
	subs   map[LookupID]*subscription
	closed bool

	wg         sync.WaitGroup // the timer loop and FindProviders watchers
	closeOnce  sync.Once
	sendErrors atomic.Uint64
	inboxDrops atomic.Uint64
}

// inboxSize is the capacity of Node.inbox, in payloads (at most about
// 1.2 MB of copies).
const inboxSize = 1024

// inboxBatch is how many queued payloads the loop handles per lock.
const inboxBatch = 64

type inbound struct {
	from    netip.AddrPort
	sender  identity.PublicKey
	payload []byte
}

// subscription is a caller waiting on a lookup.
type subscription struct {
	providers chan Provider // FindProviders only; capacity MaxProvidersPerLookup
	done      chan struct{} // closed when the lookup ends
	err       error         // set before done is closed
}

// New makes a Node for the holder of signer and starts its timer loop.
// Feed it received payloads with HandleMessage; Close it when done.
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
	ctx, cancel := context.WithCancelCause(context.Background())
	n := &Node{net: nw, log: core.log, ctx: ctx, cancel: cancel, kick: make(chan struct{}, 1),
		inbox: make(chan inbound, inboxSize), core: core, subs: make(map[LookupID]*subscription)}
	n.wg.Add(1)
	go n.run()
	return n, nil
}

// Self returns the node's Kademlia ID.
func (n *Node) Self() identity.PeerID { return n.core.Self() }

// Counters returns the Core's counters.
func (n *Node) Counters() Counters {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.core.Counters()
}

// SendErrors returns how many sends the Network refused.
func (n *Node) SendErrors() uint64 { return n.sendErrors.Load() }

// InboxDrops returns how many received payloads were dropped because the
// node was not keeping up.
func (n *Node) InboxDrops() uint64 { return n.inboxDrops.Load() }

// TableSize returns the number of nodes in the routing table.
func (n *Node) TableSize() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.core.TableSize()
}

// SetAddrs sets the addresses put in our provider records.
func (n *Node) SetAddrs(addrs []netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.core.SetAddrs(addrs)
}

// HandleMessage takes one DHT payload received from `from` and signed (at
// the datagram layer) by sender. It copies payload and queues it for the
// node's goroutine; it never blocks. When the queue is full the payload is
// dropped and counted (InboxDrops).
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

// handleInbox feeds first and up to inboxBatch-1 more queued payloads to the
// core under one lock.
func (n *Node) handleInbox(first inbound) {
	n.with(func(c *Core) LookupID {
		now := time.Now()
		c.HandleMessage(now, first.from, first.sender, first.payload)
		for range inboxBatch - 1 {
			select {
			case in := <-n.inbox:
				c.HandleMessage(now, in.from, in.sender, in.payload)
			default:
				return 0
			}
		}
		return 0
	}, nil)
}

// with runs f on the Core under the lock, registers sub for the lookup f
// returns (if any), dispatches events, then sends messages outside the lock.
// It reports false when the node is closed.
func (n *Node) with(f func(c *Core) LookupID, sub *subscription) bool {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return false
	}
	id := f(n.core)
	if sub != nil {
		n.subs[id] = sub
	}
	rd := n.core.Ready()
	n.dispatch(rd.Events)
	n.mu.Unlock()
	n.sendAll(rd.Messages)
	select {
	case n.kick <- struct{}{}:
	default: // a kick is pending already
	}
	return true
}

// dispatch delivers events to subscriptions. Called with mu held; never
// blocks: a provider channel has room for every provider a lookup reports.
func (n *Node) dispatch(evs []Event) {
	for _, e := range evs {
		s := n.subs[e.Lookup]
		if s == nil {
			continue
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
			n.endSub(e.Lookup, s, e.Err)
		}
	}
}

// endSub closes a subscription. Called with mu held.
func (n *Node) endSub(id LookupID, s *subscription, err error) {
	delete(n.subs, id)
	s.err = err
	if s.providers != nil {
		close(s.providers)
	}
	close(s.done)
}

func (n *Node) sendAll(msgs []Outgoing) {
	for _, m := range msgs {
		if err := n.net.Send(m.To, m.Payload); err != nil {
			if k := n.sendErrors.Add(1); k&(k-1) == 0 { // logged at powers of two only
				n.log.Debug("dht: send failed", "to", m.To, "err", err, "failures", k)
			}
		}
	}
}

// run fires the Core's timers until Close.
func (n *Node) run() {
	defer n.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		n.mu.Lock()
		d := n.core.NextDeadline()
		n.mu.Unlock()
		t.Reset(time.Until(d))
		select {
		case <-n.ctx.Done():
			return
		case <-n.kick:
		case in := <-n.inbox:
			n.handleInbox(in)
		case <-t.C:
			n.with(func(c *Core) LookupID { c.Tick(time.Now()); return 0 }, nil)
		}
	}
}

// wait blocks until the lookup ends, ctx ends (the lookup is cancelled) or
// the node closes.
func (n *Node) wait(ctx context.Context, id LookupID, s *subscription) error {
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		n.cancelLookup(id, s, ctx.Err())
		<-s.done
		return s.err
	}
}

func (n *Node) cancelLookup(id LookupID, s *subscription, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subs[id] == s {
		n.core.Cancel(id)
		n.endSub(id, s, fmt.Errorf("%w: %w", ErrCanceled, err))
	}
}

// Bootstrap pings addrs and looks up our own ID through those that answer.
// It returns ErrNoContacts when nobody answered.
func (n *Node) Bootstrap(ctx context.Context, addrs []netip.AddrPort) error {
	s := &subscription{done: make(chan struct{})}
	var id LookupID
	if !n.with(func(c *Core) LookupID { id = c.Bootstrap(time.Now(), addrs); return id }, s) {
		return ErrClosed
	}
	if err := n.wait(ctx, id, s); err != nil {
		return fmt.Errorf("dht: bootstrap: %w", err)
	}
	return nil
}

// Provide announces that we serve id and keeps republishing it until
// StopProviding or Close. It returns once the record is stored on the k
// closest nodes that answered, or ErrNotStored if none took it.
func (n *Node) Provide(ctx context.Context, id Key) error {
	s := &subscription{done: make(chan struct{})}
	var lid LookupID
	if !n.with(func(c *Core) LookupID { lid = c.Provide(time.Now(), id); return lid }, s) {
		return ErrClosed
	}
	if err := n.wait(ctx, lid, s); err != nil {
		return fmt.Errorf("dht: provide: %w", err)
	}
	return nil
}

// StopProviding stops republishing id.
func (n *Node) StopProviding(id Key) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.core.StopProviding(id)
}

// FindProviders looks up providers of id. Verified providers arrive on the
// channel as they are found, each once, at most MaxProvidersPerLookup; the
// channel is closed when the lookup ends, ctx ends or the node closes. The
// caller need not drain it: its capacity holds every result.
func (n *Node) FindProviders(ctx context.Context, id Key) <-chan Provider {
	s := &subscription{done: make(chan struct{})}
	var lid LookupID
	ok := n.with(func(c *Core) LookupID {
		s.providers = make(chan Provider, c.cfg.MaxProvidersPerLookup)
		lid = c.FindProviders(time.Now(), id)
		n.wg.Add(1) // under mu with closed false: Close has not begun waiting
		return lid
	}, s)
	if !ok {
		ch := make(chan Provider)
		close(ch)
		return ch
	}
	go func() {
		defer n.wg.Done()
		select {
		case <-s.done:
		case <-ctx.Done():
			n.cancelLookup(lid, s, ctx.Err())
		}
	}()
	return s.providers
}

// Close stops the node: pending lookups end with ErrClosed, the timer loop
// and watchers exit, and Close returns after they have. It is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		for id, s := range n.subs {
			n.endSub(id, s, ErrClosed)
		}
		n.mu.Unlock()
		n.cancel(ErrClosed)
		n.wg.Wait()
	})
	return nil
}
