package ipv8

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// Framing says how a community frames one of its message IDs. py-ipv8
// has two framings per kind: its default (ez_send with a payload, or
// @lazy_wrapper(Payload)) carries no global time; the global-time one
// (GlobalTimeDistributionPayload first, as the discovery messages do)
// puts a uint64 Lamport time before the payload.
type Framing uint8

// Framings.
const (
	// FramingUnknown: the community does not speak this message ID; such
	// datagrams are dropped and counted.
	FramingUnknown Framing = iota
	// FramingSigned: key, global time, payload, signature (py-ipv8's
	// discovery messages, GlobalTimeDistributionPayload).
	FramingSigned
	// FramingUnsigned: global time, payload (puncture request, ping,
	// pong).
	FramingUnsigned
	// FramingSignedNoTime: key, payload, signature. py-ipv8's default
	// for ez_send(peer, Payload) and @lazy_wrapper(Payload).
	FramingSignedNoTime
	// FramingUnsignedNoTime: payload only. py-ipv8's default for
	// ez_send(peer, Payload, sig=False) and @lazy_wrapper_unsigned.
	FramingUnsignedNoTime
)

// Signed reports whether messages of this framing carry a key and a
// signature.
func (f Framing) Signed() bool { return f == FramingSigned || f == FramingSignedNoTime }

// GlobalTime reports whether messages of this framing carry a global
// time.
func (f Framing) GlobalTime() bool { return f == FramingSigned || f == FramingUnsigned }

// Overhead is the size of a message of this framing with an empty
// payload (a 74-byte key when signed).
func (f Framing) Overhead() int {
	n := HeaderSize
	if f.Signed() {
		n += 2 + identity.PublicKeySize + SignatureSize
	}
	if f.GlobalTime() {
		n += 8
	}
	return n
}

func (f Framing) String() string {
	switch f {
	case FramingSigned:
		return "signed with global time"
	case FramingUnsigned:
		return "unsigned with global time"
	case FramingSignedNoTime:
		return "signed"
	case FramingUnsignedNoTime:
		return "unsigned"
	}
	return "unknown"
}

// Community receives the messages of one community ID. Several
// Communities may share an ID as long as no message ID is spoken by two
// of them: an application adds its messages to a community whose walk
// another part runs.
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
	ErrCommunityTaken   = errors.New("ipv8: community message already registered")
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

	clock  atomic.Uint64 // Lamport clock: the last global time claimed or seen
	stats  counters
	perCom atomic.Pointer[map[CommunityID]*comCounters] // copy on write under mu; one entry per ID ever registered, kept after Unregister

	mu          sync.Mutex // guards the fields below
	communities map[CommunityID][]Community
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
		communities: make(map[CommunityID][]Community),
		rate:        newRateTable(cfg),
		waiters:     make(map[*waiter]struct{}),
	}, nil
}

// Public returns the key that signs this endpoint's messages.
func (e *Endpoint) Public() identity.PublicKey { return e.cfg.Key.Public() }

// Register routes the messages of community id that c speaks (those for
// which c.Framing is not FramingUnknown) to c. It fails with
// ErrCommunityTaken when a Community registered under id already speaks
// one of them.
func (e *Endpoint) Register(id CommunityID, c Community) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, other := range e.communities[id] {
		for m := range 256 {
			if c.Framing(byte(m)) != FramingUnknown && other.Framing(byte(m)) != FramingUnknown {
				return fmt.Errorf("%w: message %d of community %s", ErrCommunityTaken, m, id)
			}
		}
	}
	e.communities[id] = append(e.communities[id], c)
	if e.counters(id) == nil { // copy on write: senders read it without the lock
		old := e.loadPerCom()
		m := make(map[CommunityID]*comCounters, len(old)+1)
		maps.Copy(m, old)
		m[id] = new(comCounters)
		e.perCom.Store(&m)
	}
	return nil
}

// Unregister stops routing community id's messages to c.
func (e *Endpoint) Unregister(id CommunityID, c Community) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cs := e.communities[id]
	for i, o := range cs {
		if o == c {
			cs = append(cs[:i:i], cs[i+1:]...)
			break
		}
	}
	if len(cs) == 0 {
		delete(e.communities, id)
	} else {
		e.communities[id] = cs
	}
}

// route returns the Community of id that speaks msgID and its framing,
// and id's counters (nil for an unknown community). Called with e.mu held.
func (e *Endpoint) route(id CommunityID, msgID byte) (Community, Framing, *comCounters) {
	if len(e.communities[id]) == 0 {
		return nil, FramingUnknown, nil
	}
	for _, c := range e.communities[id] {
		if f := c.Framing(msgID); f != FramingUnknown {
			return c, f, e.counters(id)
		}
	}
	return nil, FramingUnknown, e.counters(id)
}

// LocalAddr returns the address of the socket the endpoint's Writer
// sends from, when the Writer has a LocalAddr method (a *net.UDPConn,
// the overlay Node's writer), else the zero AddrPort.
func (e *Endpoint) LocalAddr() netip.AddrPort {
	la, ok := e.w.(interface{ LocalAddr() net.Addr })
	if !ok {
		return netip.AddrPort{}
	}
	ua, ok := la.LocalAddr().(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	a := ua.AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
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

// Send signs and sends one message of community c to addr, with a
// global time (FramingSigned).
func (e *Endpoint) Send(to netip.AddrPort, c CommunityID, msgID byte, payload []byte) error {
	return e.SendFramed(to, c, msgID, FramingSigned, payload)
}

// SendUnsigned sends one unsigned message of community c to addr, with a
// global time (FramingUnsigned).
func (e *Endpoint) SendUnsigned(to netip.AddrPort, c CommunityID, msgID byte, payload []byte) error {
	return e.SendFramed(to, c, msgID, FramingUnsigned, payload)
}

// SendFramed sends one message of community c to addr in framing f,
// signing it if f is signed and claiming a global time if f carries one.
func (e *Endpoint) SendFramed(to netip.AddrPort, c CommunityID, msgID byte, f Framing, payload []byte) error {
	if f == FramingUnknown {
		return fmt.Errorf("ipv8: sending message %d of %s: unknown framing", msgID, c)
	}
	var gt uint64
	if f.GlobalTime() {
		gt = e.claimTime()
	}
	b := make([]byte, 0, f.Overhead()+len(payload))
	b = AppendFramed(b, e.cfg.Key, c, msgID, f, gt, payload)
	return e.write(to, c, b)
}

func (e *Endpoint) write(to netip.AddrPort, c CommunityID, b []byte) error {
	cc := e.counters(c)
	if len(b) > MaxDatagramSize {
		e.stats.sendOversized.Add(1)
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxDatagramSize)
	}
	if _, err := e.w.WriteTo(b, net.UDPAddrFromAddrPort(to)); err != nil {
		e.stats.sendErrors.Add(1)
		return fmt.Errorf("ipv8: sending to %s: %w", to, err)
	}
	e.stats.sent.Add(1)
	if cc != nil {
		cc.sent.Add(1)
	}
	return nil
}

// counters returns community c's counters, nil if c was never
// registered. It takes no lock.
func (e *Endpoint) counters(c CommunityID) *comCounters { return e.loadPerCom()[c] }

func (e *Endpoint) loadPerCom() map[CommunityID]*comCounters {
	if m := e.perCom.Load(); m != nil {
		return *m
	}
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
	allowed, byHost := e.rate.Allow(from, time.Now())
	c, f, cc := e.route(cid, msgID)
	e.mu.Unlock()
	if !allowed {
		e.stats.rateLimited.Add(1)
		if byHost {
			e.stats.hostLimited.Add(1)
		}
		if cc != nil {
			cc.rateLimited.Add(1)
		}
		return
	}
	if cc == nil {
		e.stats.unknownCommunity.Add(1)
		return
	}
	cc.received.Add(1)
	if c == nil {
		e.stats.unknownMessage.Add(1)
		cc.unknownMessage.Add(1)
		return
	}
	m, err := Decode(b, f)
	if err != nil {
		if errors.Is(err, ErrBadSignature) {
			e.stats.badSignature.Add(1)
			cc.badSignature.Add(1)
		} else {
			e.stats.malformed.Add(1)
			cc.malformed.Add(1)
		}
		e.cfg.Logger.Debug("ipv8: dropped datagram", "peer", from, "err", err)
		return
	}
	m.From = from
	if m.HasGlobalTime {
		e.observeTime(m.GlobalTime)
	}
	if e.answer(&m) {
		e.stats.answered.Add(1)
		cc.answered.Add(1)
		return
	}
	e.stats.delivered.Add(1)
	cc.delivered.Add(1)
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
