package ipv8

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Writer sends one datagram. quic.Transport.WriteTo and *net.UDPConn have
// this shape.
type Writer interface {
	WriteTo(b []byte, addr net.Addr) (int, error)
}

// Framing says how a community frames one of its message IDs.
type Framing uint8

// Framings.
const (
	// FramingUnknown: the community does not speak this message ID; such
	// datagrams are dropped and counted.
	FramingUnknown Framing = iota
	// FramingSigned: key, global time, payload, signature.
	FramingSigned
	// FramingUnsigned: global time, payload.
	FramingUnsigned
)

// Community receives the messages of one community ID.
type Community interface {
	// Framing reports how message msgID is framed.
	Framing(msgID byte) Framing
	// HandleMessage is called once per accepted message, on the goroutine
	// that called Endpoint.HandlePacket, after any signature has been
	// verified. It must not block; m.Payload is valid only until it
	// returns.
	HandleMessage(m *Message)
}

// Errors of the Endpoint.
var (
	ErrCommunityTaken   = errors.New("ipv8: community already registered")
	ErrTooManyRequests  = errors.New("ipv8: too many pending requests")
	ErrRequestCancelled = errors.New("ipv8: request ended without an answer")
)

// Endpoint is the datagram layer of one node: it frames, signs, verifies
// and dispatches IPv8 datagrams to registered communities, and keeps the
// node's Lamport clock. It owns no socket: the caller feeds it received
// datagrams through HandlePacket and gives it a Writer for sending.
//
// All methods are safe for concurrent use.
type Endpoint struct {
	// Set at construction, read-only after.
	cfg Config
	w   Writer

	clock atomic.Uint64 // Lamport clock: the last global time claimed or seen
	stats counters

	mu          sync.Mutex // guards the fields below
	communities map[CommunityID]Community
	rate        *rateTable
	waiters     map[*waiter]struct{}
}

// NewEndpoint returns an Endpoint that sends through w.
func NewEndpoint(w Writer, cfg Config) (*Endpoint, error) {
	cfg, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("ipv8: nil Writer")
	}
	return &Endpoint{
		cfg:         cfg,
		w:           w,
		communities: make(map[CommunityID]Community),
		rate:        newRateTable(cfg.RatePerSecond, cfg.RateBurst, cfg.RateTableSize),
		waiters:     make(map[*waiter]struct{}),
	}, nil
}

// Public returns the key that signs this endpoint's messages.
func (e *Endpoint) Public() identity.PublicKey { return e.cfg.Key.Public() }

// Register routes community id's messages to c.
func (e *Endpoint) Register(id CommunityID, c Community) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.communities[id]; ok {
		return fmt.Errorf("%w: %s", ErrCommunityTaken, id)
	}
	e.communities[id] = c
	return nil
}

// Unregister stops routing community id's messages.
func (e *Endpoint) Unregister(id CommunityID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.communities, id)
}

// GlobalTime returns the Lamport clock's current value.
func (e *Endpoint) GlobalTime() uint64 { return e.clock.Load() }

// claimTime advances the clock by one and returns the new value.
func (e *Endpoint) claimTime() uint64 { return e.clock.Add(1) }

// observeTime raises the clock to t. Values in the top half of the range
// are ignored so that a hostile peer cannot make the clock wrap.
func (e *Endpoint) observeTime(t uint64) {
	if t > math.MaxInt64 {
		return
	}
	for {
		cur := e.clock.Load()
		if t <= cur || e.clock.CompareAndSwap(cur, t) {
			return
		}
	}
}

// Send signs and sends one message of community c to addr.
func (e *Endpoint) Send(to netip.AddrPort, c CommunityID, msgID byte, payload []byte) error {
	b := make([]byte, 0, SignedOverhead+len(payload))
	b = AppendSigned(b, e.cfg.Key, c, msgID, e.claimTime(), payload)
	return e.write(to, b)
}

// SendUnsigned sends one unsigned message of community c to addr.
func (e *Endpoint) SendUnsigned(to netip.AddrPort, c CommunityID, msgID byte, payload []byte) error {
	b := make([]byte, 0, UnsignedOverhead+len(payload))
	b = AppendUnsigned(b, c, msgID, e.claimTime(), payload)
	return e.write(to, b)
}

func (e *Endpoint) write(to netip.AddrPort, b []byte) error {
	if len(b) > MaxDatagramSize {
		e.stats.sendOversized.Add(1)
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxDatagramSize)
	}
	if _, err := e.w.WriteTo(b, net.UDPAddrFromAddrPort(to)); err != nil {
		e.stats.sendErrors.Add(1)
		return fmt.Errorf("ipv8: sending to %s: %w", to, err)
	}
	e.stats.sent.Add(1)
	return nil
}

// HandlePacket processes one received datagram. It does not retain b.
// Datagrams that are oversized, malformed, of unknown communities or
// messages, rate limited or badly signed are dropped and counted.
func (e *Endpoint) HandlePacket(from netip.AddrPort, b []byte) {
	e.stats.received.Add(1)
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if len(b) > MaxDatagramSize {
		e.stats.oversized.Add(1)
		return
	}
	cid, msgID, _, err := ParseHeader(b)
	if err != nil {
		e.stats.malformed.Add(1)
		return
	}
	e.mu.Lock()
	allowed := e.rate.Allow(from, time.Now())
	c := e.communities[cid]
	e.mu.Unlock()
	if !allowed {
		e.stats.rateLimited.Add(1)
		return
	}
	if c == nil {
		e.stats.unknownCommunity.Add(1)
		return
	}
	var m Message
	switch c.Framing(msgID) {
	case FramingSigned:
		m, err = DecodeSigned(b)
	case FramingUnsigned:
		m, err = DecodeUnsigned(b)
	default:
		e.stats.unknownMessage.Add(1)
		return
	}
	if err != nil {
		if errors.Is(err, ErrBadSignature) {
			e.stats.badSignature.Add(1)
		} else {
			e.stats.malformed.Add(1)
		}
		e.cfg.Logger.Debug("ipv8: dropped datagram", "from", from, "err", err)
		return
	}
	m.From = from
	e.observeTime(m.GlobalTime)
	if e.answer(&m) {
		e.stats.answered.Add(1)
		return
	}
	e.stats.delivered.Add(1)
	c.HandleMessage(&m)
}

// ServeConn reads datagrams from pc and hands those starting with 0x00 to
// HandlePacket until ctx ends or pc fails. It is for tests and for
// running without the QUIC transport; the overlay Node feeds HandlePacket
// itself. ServeConn does not close pc.
func (e *Endpoint) ServeConn(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 2048)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return fmt.Errorf("ipv8: reading: %w", err)
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		if n > 0 && buf[0] != Magic {
			e.stats.received.Add(1)
			e.stats.malformed.Add(1)
			continue
		}
		if n == len(buf) { // possibly truncated
			e.stats.received.Add(1)
			e.stats.oversized.Add(1)
			continue
		}
		e.HandlePacket(ua.AddrPort(), buf[:n])
	}
}

// Run owns the endpoint's housekeeping (pruning the rate-limit table)
// until ctx ends; it returns context.Cause(ctx). The endpoint works
// without Run, but its rate-limit table then only shrinks by eviction.
func (e *Endpoint) Run(ctx context.Context) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case now := <-t.C:
			e.mu.Lock()
			e.rate.Prune(now)
			e.mu.Unlock()
		}
	}
}
