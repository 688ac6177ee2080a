package relay

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/zeebo/blake3"

	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/ratelimit"
)

// Config tunes a Conn. The zero value is a client of no relay yet.
type Config struct {
	// KeyPair signs registrations with relays. Required to use relays.
	KeyPair *identity.KeyPair
	// Serve makes this node a relay for others. Default off (opt-in).
	Serve bool
	// Lifetime is how long a registration and an idle session last.
	// Default 60 s; clients renew at a third of it (Maintain).
	Lifetime time.Duration
	// MaxClients caps the registered clients. Default 1024.
	MaxClients int
	// MaxPairs caps the relayed sessions. Default 256.
	MaxPairs int
	// MaxPairsPerClient caps the sessions one client takes part in.
	// Default 8.
	MaxPairsPerClient int
	// PairRate is each session's rate in bytes per second. Default 8 MiB/s.
	PairRate float64
	// PairBudget is the most bytes one session forwards. Default 4 GiB.
	PairBudget int64
	// Rate is the relay's total rate in bytes per second. Default 32 MiB/s.
	Rate float64
	// MaxRelays caps the relays a client registers with. Default 4.
	MaxRelays int
	// MaxRoutes caps the relayed routes (virtual addresses) a client
	// keeps; beyond it the least recently used goes. Default 1024.
	MaxRoutes int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Lifetime <= 0 {
		c.Lifetime = 60 * time.Second
	}
	if c.MaxClients <= 0 {
		c.MaxClients = 1024
	}
	if c.MaxPairs <= 0 {
		c.MaxPairs = 256
	}
	if c.MaxPairsPerClient <= 0 {
		c.MaxPairsPerClient = 8
	}
	if c.PairRate <= 0 {
		c.PairRate = 8 << 20
	}
	if c.PairBudget <= 0 {
		c.PairBudget = 4 << 30
	}
	if c.Rate <= 0 {
		c.Rate = 32 << 20
	}
	if c.MaxRelays <= 0 {
		c.MaxRelays = 4
	}
	if c.MaxRoutes <= 0 {
		c.MaxRoutes = 1024
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Stats counts what a Conn did, as relay and as client.
type Stats struct {
	Clients, Pairs   int    // registered clients, open sessions (relay)
	Registrations    uint64 // registers accepted (relay)
	BadRegistrations uint64 // bad cookie or signature (relay)
	SessionsOpened   uint64 // (relay)
	Refused          uint64 // connects and registrations refused (relay)
	FramesForwarded  uint64 // data frames forwarded (relay)
	BytesForwarded   uint64 // their bytes (relay)
	Dropped          uint64 // data frames dropped: rate, unknown session, wrong sender (relay)
	BudgetEnded      uint64 // sessions ended by their byte budget (relay)
	Malformed        uint64 // frames that did not decode
	RelayedIn        uint64 // QUIC bytes received through relays (client)
	RelayedOut       uint64 // QUIC bytes sent through relays (client)
	Routes           int    // relayed routes (client)
	Registered       int    // relays this node is registered with (client)
}

// prefix is 100::/64, RFC 6666's discard-only prefix, where virtual
// addresses live.
var prefix = netip.MustParsePrefix("100::/64")

// IsVirtual reports whether a is the virtual address of a relayed route.
func IsVirtual(a netip.AddrPort) bool { return prefix.Contains(a.Addr()) }

// ErrRefused is returned by Connect when the relay refuses.
var ErrRefused = errors.New("relay: refused")

type client struct {
	id      identity.PeerID
	addr    netip.AddrPort
	expires time.Time
	pairs   int
}

type session struct {
	a, b       netip.AddrPort
	ida, idb   identity.PeerID
	used       int64
	lastActive time.Time
}

type route struct {
	relay   netip.AddrPort
	session uint32
}

type relayState struct {
	registered time.Time // zero until the relay confirmed
	lifetime   time.Duration
	helloSent  time.Time
}

type waitKey struct {
	relay  netip.AddrPort
	target identity.PeerID
}

type connectResult struct {
	session uint32
	err     error
}

// burst is a bucket's depth for a rate: 100 ms of traffic, at least 64 KiB.
func burst(rate float64) float64 { return max(rate/10, 64<<10) }

// Conn wraps a UDP socket: relay frames are handled inside ReadFrom and
// never returned, data from relays comes out from virtual addresses, and
// writes to virtual addresses go to the relay. One goroutine reads (as
// quic-go's Transport does); any may write.
type Conn struct {
	net.PacketConn
	cfg    Config
	secret [32]byte
	rbuf   []byte

	mu sync.Mutex
	// relay side
	clients  map[identity.PeerID]*client
	byAddr   map[netip.AddrPort]identity.PeerID
	sessions map[uint32]*session
	pairRate *ratelimit.Table[uint32]   // bytes per session
	global   *ratelimit.Table[struct{}] // bytes in all
	// client side
	relays  map[netip.AddrPort]*relayState
	virt    map[netip.AddrPort]route
	routes  map[route]netip.AddrPort
	used    map[netip.AddrPort]time.Time // virtual address -> last use
	nextV   uint64
	waiting map[waitKey][]chan connectResult
	stats   Stats
	out     []outFrame // written by handle after it unlocks
}

// outFrame is a frame to write once the lock is released.
type outFrame struct {
	to netip.AddrPort
	b  []byte
}

// queueLocked encodes f to be written after the lock is released.
func (c *Conn) queueLocked(to netip.AddrPort, f Frame) {
	if b, err := f.Append(nil); err == nil {
		c.out = append(c.out, outFrame{to, b})
	}
}

// New wraps pc. The Conn owns pc: Close closes it.
func New(pc net.PacketConn, cfg Config) (*Conn, error) {
	cfg = cfg.withDefaults()
	c := &Conn{
		PacketConn: pc,
		cfg:        cfg,
		rbuf:       make([]byte, 2048),
		clients:    map[identity.PeerID]*client{},
		byAddr:     map[netip.AddrPort]identity.PeerID{},
		sessions:   map[uint32]*session{},
		pairRate:   ratelimit.New[uint32](cfg.PairRate, burst(cfg.PairRate), cfg.MaxPairs),
		global:     ratelimit.New[struct{}](cfg.Rate, burst(cfg.Rate), 1),
		relays:     map[netip.AddrPort]*relayState{},
		virt:       map[netip.AddrPort]route{},
		routes:     map[route]netip.AddrPort{},
		used:       map[netip.AddrPort]time.Time{},
		waiting:    map[waitKey][]chan connectResult{},
	}
	if _, err := rand.Read(c.secret[:]); err != nil {
		return nil, fmt.Errorf("relay: secret: %w", err)
	}
	return c, nil
}

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Clients, s.Pairs, s.Routes = len(c.clients), len(c.sessions), len(c.virt)
	for _, r := range c.relays {
		if !r.registered.IsZero() {
			s.Registered++
		}
	}
	return s
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	return netip.AddrPort{}, false
}

// ReadFrom returns the next packet that is not a relay control frame:
// QUIC and IPv8 packets as they came, relayed QUIC packets from their
// route's virtual address.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(c.rbuf)
		if err != nil {
			return 0, addr, err
		}
		b := c.rbuf[:n]
		if !IsFrame(b) {
			return copy(p, b), addr, nil
		}
		from, ok := addrPort(addr)
		if !ok {
			continue
		}
		if v, payload := c.handle(from, b); v.IsValid() {
			return copy(p, payload), net.UDPAddrFromAddrPort(v), nil
		}
	}
}

// WriteTo sends p to addr, through its relay when addr is virtual.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ap, ok := addrPort(addr)
	if !ok || !IsVirtual(ap) {
		return c.PacketConn.WriteTo(p, addr)
	}
	c.mu.Lock()
	r, ok := c.virt[ap]
	if ok {
		c.used[ap] = c.cfg.Now()
		c.stats.RelayedOut += uint64(len(p))
	}
	c.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("relay: no route to %s", ap)
	}
	f := Frame{Type: TypeData, Session: r.session, Payload: p}
	b, err := f.Append(make([]byte, 0, dataHeader+len(p)))
	if err != nil {
		return 0, err
	}
	if _, err := c.PacketConn.WriteTo(b, net.UDPAddrFromAddrPort(r.relay)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// send writes a control frame; errors are those of a lost datagram.
func (c *Conn) send(to netip.AddrPort, f Frame) {
	if b, err := f.Append(nil); err == nil {
		c.PacketConn.WriteTo(b, net.UDPAddrFromAddrPort(to))
	}
}

// handle processes one relay frame from `from`. It returns a virtual
// address and the payload when the frame is relayed data for us.
func (c *Conn) handle(from netip.AddrPort, b []byte) (netip.AddrPort, []byte) {
	f, err := Decode(b)
	if err != nil {
		c.mu.Lock()
		c.stats.Malformed++
		c.mu.Unlock()
		return netip.AddrPort{}, nil
	}
	now := c.cfg.Now()
	c.mu.Lock()
	defer func() {
		out := c.out
		c.out = c.out[:0:0]
		c.mu.Unlock()
		for _, o := range out { // b of a forwarded frame is still rbuf: the next read comes after
			c.PacketConn.WriteTo(o.b, net.UDPAddrFromAddrPort(o.to))
		}
	}()
	switch f.Type {
	case TypeHello, TypeRegister, TypeConnect:
		if c.cfg.Serve {
			c.serveLocked(now, from, &f)
		}
	case TypeData:
		if s := c.sessions[f.Session]; c.cfg.Serve && s != nil && (from == s.a || from == s.b) {
			c.forwardLocked(now, from, s, f.Session, b)
			return netip.AddrPort{}, nil
		}
		if rs := c.relays[from]; rs != nil && !rs.registered.IsZero() {
			v := c.routeLocked(now, route{from, f.Session})
			c.stats.RelayedIn += uint64(len(f.Payload))
			return v, f.Payload
		}
		c.stats.Dropped++
	case TypeCookie:
		if rs := c.relays[from]; rs != nil && c.cfg.KeyPair != nil {
			reg := Frame{Type: TypeRegister, Cookie: f.Cookie, Key: c.cfg.KeyPair.Public()}
			copy(reg.Sig[:], c.cfg.KeyPair.Sign(registerMessage(f.Cookie)))
			c.queueLocked(from, reg)
		}
	case TypeRegistered:
		if rs := c.relays[from]; rs != nil {
			rs.registered = now
			rs.lifetime = time.Duration(f.Lifetime) * time.Second
		}
	case TypeSession, TypeRefused:
		k := waitKey{from, f.Target}
		res := connectResult{session: f.Session}
		if f.Type == TypeRefused {
			res.err = fmt.Errorf("%w: reason %d", ErrRefused, f.Reason)
		}
		for _, ch := range c.waiting[k] {
			select {
			case ch <- res:
			default:
			}
		}
		delete(c.waiting, k)
	}
	return netip.AddrPort{}, nil
}

// cookie binds a client's address to the current minute (or the one
// before, when before is set).
func (c *Conn) cookie(now time.Time, addr netip.AddrPort, before bool) [CookieSize]byte {
	minute := now.Unix() / 60
	if before {
		minute--
	}
	h := blake3.New()
	h.Write(c.secret[:])
	ab, _ := addr.MarshalBinary()
	h.Write(ab)
	var m [8]byte
	binary.BigEndian.PutUint64(m[:], uint64(minute))
	h.Write(m[:])
	var out [CookieSize]byte
	copy(out[:], h.Sum(nil))
	return out
}

func (c *Conn) serveLocked(now time.Time, from netip.AddrPort, f *Frame) {
	c.expireLocked(now)
	switch f.Type {
	case TypeHello:
		c.queueLocked(from, Frame{Type: TypeCookie, Cookie: c.cookie(now, from, false)})
	case TypeRegister:
		if (f.Cookie != c.cookie(now, from, false) && f.Cookie != c.cookie(now, from, true)) ||
			!f.Key.Verify(registerMessage(f.Cookie), f.Sig[:]) {
			c.stats.BadRegistrations++
			return
		}
		id := f.Key.PeerID()
		cl := c.clients[id]
		if cl == nil {
			if len(c.clients) >= c.cfg.MaxClients {
				c.stats.Refused++
				c.queueLocked(from, Frame{Type: TypeRefused, Reason: ReasonFull, Target: id})
				return
			}
			cl = &client{id: id}
			c.clients[id] = cl
		}
		if cl.addr != from {
			delete(c.byAddr, cl.addr)
			if old, ok := c.byAddr[from]; ok && old != id { // the address moved to another key
				delete(c.clients, old)
			}
			cl.addr = from
			c.byAddr[from] = id
		}
		cl.expires = now.Add(c.cfg.Lifetime)
		c.stats.Registrations++
		c.queueLocked(from, Frame{Type: TypeRegistered, Lifetime: uint16(min(c.cfg.Lifetime/time.Second, 65535))})
	case TypeConnect:
		src, ok := c.byAddr[from]
		if !ok {
			c.stats.Refused++
			c.queueLocked(from, Frame{Type: TypeRefused, Reason: ReasonNotRegistered, Target: f.Target})
			return
		}
		dst := c.clients[f.Target]
		if dst == nil || f.Target == src {
			c.stats.Refused++
			c.queueLocked(from, Frame{Type: TypeRefused, Reason: ReasonUnknownTarget, Target: f.Target})
			return
		}
		for id, s := range c.sessions { // an open session between the two: the same one
			if (s.a == from && s.b == dst.addr) || (s.b == from && s.a == dst.addr) {
				s.lastActive = now
				c.queueLocked(from, Frame{Type: TypeSession, Session: id, Target: f.Target})
				return
			}
		}
		if len(c.sessions) >= c.cfg.MaxPairs || c.clients[src].pairs >= c.cfg.MaxPairsPerClient || dst.pairs >= c.cfg.MaxPairsPerClient {
			c.stats.Refused++
			c.queueLocked(from, Frame{Type: TypeRefused, Reason: ReasonFull, Target: f.Target})
			return
		}
		var sid uint32
		for sid == 0 || c.sessions[sid] != nil {
			var b [4]byte
			rand.Read(b[:])
			sid = binary.BigEndian.Uint32(b[:])
		}
		c.sessions[sid] = &session{a: from, b: dst.addr, ida: src, idb: dst.id, lastActive: now}
		c.clients[src].pairs++
		dst.pairs++
		c.stats.SessionsOpened++
		c.queueLocked(from, Frame{Type: TypeSession, Session: sid, Target: f.Target})
	}
}

func (c *Conn) forwardLocked(now time.Time, from netip.AddrPort, s *session, sid uint32, b []byte) {
	to := s.b
	if from == s.b {
		to = s.a
	}
	n := int64(len(b))
	if s.used+n > c.cfg.PairBudget {
		c.endLocked(sid, s)
		c.stats.BudgetEnded++
		c.stats.Dropped++
		return
	}
	if !c.pairRate.AllowN(sid, float64(n), now) || !c.global.AllowN(struct{}{}, float64(n), now) {
		c.stats.Dropped++
		return
	}
	s.used += n
	s.lastActive = now
	c.stats.FramesForwarded++
	c.stats.BytesForwarded += uint64(n)
	// The frame goes on as it came (same session ID): ciphertext only.
	c.out = append(c.out, outFrame{to, b})
}

func (c *Conn) endLocked(sid uint32, s *session) {
	delete(c.sessions, sid)
	for _, id := range []identity.PeerID{s.ida, s.idb} {
		if cl := c.clients[id]; cl != nil && cl.pairs > 0 {
			cl.pairs--
		}
	}
}

// expireLocked forgets lapsed registrations and idle sessions.
func (c *Conn) expireLocked(now time.Time) {
	for id, cl := range c.clients {
		if now.After(cl.expires) {
			delete(c.clients, id)
			if c.byAddr[cl.addr] == id {
				delete(c.byAddr, cl.addr)
			}
		}
	}
	for sid, s := range c.sessions {
		if now.Sub(s.lastActive) > c.cfg.Lifetime {
			c.endLocked(sid, s)
		}
	}
}

// routeLocked returns the virtual address of r, making one if needed.
func (c *Conn) routeLocked(now time.Time, r route) netip.AddrPort {
	if v, ok := c.routes[r]; ok {
		c.used[v] = now
		return v
	}
	if len(c.virt) >= c.cfg.MaxRoutes {
		var oldest netip.AddrPort
		var at time.Time
		for v, t := range c.used {
			if !oldest.IsValid() || t.Before(at) {
				oldest, at = v, t
			}
		}
		delete(c.routes, c.virt[oldest])
		delete(c.virt, oldest)
		delete(c.used, oldest)
	}
	c.nextV++
	a := prefix.Addr().As16()
	binary.BigEndian.PutUint64(a[8:], c.nextV)
	v := netip.AddrPortFrom(netip.AddrFrom16(a), 1)
	c.virt[v], c.routes[r], c.used[v] = r, v, now
	return v
}

// Register asks relay to relay for this node; Maintain renews it.
func (c *Conn) Register(relay netip.AddrPort) error {
	relay = netip.AddrPortFrom(relay.Addr().Unmap(), relay.Port())
	c.mu.Lock()
	if c.relays[relay] == nil {
		if len(c.relays) >= c.cfg.MaxRelays {
			c.mu.Unlock()
			return fmt.Errorf("relay: already using %d relays", len(c.relays))
		}
		c.relays[relay] = &relayState{}
	}
	c.relays[relay].helloSent = c.cfg.Now()
	c.mu.Unlock()
	c.send(relay, Frame{Type: TypeHello})
	return nil
}

// Relays lists the relays this node is registered with.
func (c *Conn) Relays() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []netip.AddrPort
	for a, r := range c.relays {
		if !r.registered.IsZero() && c.cfg.Now().Sub(r.registered) < r.lifetime {
			out = append(out, a)
		}
	}
	return out
}

// Maintain renews registrations at a third of their lifetime (which also
// keeps the NAT binding towards the relay open) and retries unanswered
// ones. Call it every few seconds.
func (c *Conn) Maintain() {
	now := c.cfg.Now()
	var hello []netip.AddrPort
	c.mu.Lock()
	if c.cfg.Serve {
		c.expireLocked(now)
	}
	for a, r := range c.relays {
		due := r.registered.IsZero() && now.Sub(r.helloSent) > 2*time.Second ||
			!r.registered.IsZero() && now.Sub(r.registered) > r.lifetime/3 && now.Sub(r.helloSent) > 2*time.Second
		if due {
			r.helloSent = now
			hello = append(hello, a)
		}
	}
	c.mu.Unlock()
	for _, a := range hello {
		c.send(a, Frame{Type: TypeHello})
	}
}

// Connect asks relay for a session to target and returns the virtual
// address that reaches target through it. Dial QUIC to that address with
// target's peer ID: authentication stays end to end.
func (c *Conn) Connect(ctx context.Context, relay netip.AddrPort, target identity.PeerID) (netip.AddrPort, error) {
	relay = netip.AddrPortFrom(relay.Addr().Unmap(), relay.Port())
	k := waitKey{relay, target}
	ch := make(chan connectResult, 1)
	c.mu.Lock()
	if len(c.waiting) >= 1024 {
		c.mu.Unlock()
		return netip.AddrPort{}, errors.New("relay: too many connects waiting")
	}
	c.waiting[k] = append(c.waiting[k], ch)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		w := c.waiting[k]
		for i, x := range w {
			if x == ch {
				c.waiting[k] = append(w[:i], w[i+1:]...)
				break
			}
		}
		if len(c.waiting[k]) == 0 {
			delete(c.waiting, k)
		}
		c.mu.Unlock()
	}()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		c.send(relay, Frame{Type: TypeConnect, Target: target})
		select {
		case r := <-ch:
			if r.err != nil {
				return netip.AddrPort{}, r.err
			}
			c.mu.Lock()
			v := c.routeLocked(c.cfg.Now(), route{relay, r.session})
			c.mu.Unlock()
			return v, nil
		case <-ctx.Done():
			return netip.AddrPort{}, fmt.Errorf("relay: connecting to %s through %s: %w", target.Short(), relay, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// ServiceKey is the DHT key under which relays announce themselves
// (provider records with their addresses): BLAKE3 of "shoal relay v1".
var ServiceKey = blake3.Sum256([]byte("shoal relay v1"))

// SetReadBuffer sets the wrapped socket's receive buffer, when it has one
// (quic-go asks for a large one).
func (c *Conn) SetReadBuffer(n int) error {
	if s, ok := c.PacketConn.(interface{ SetReadBuffer(int) error }); ok {
		return s.SetReadBuffer(n)
	}
	return errors.New("relay: the wrapped socket has no receive buffer to set")
}

// SetWriteBuffer sets the wrapped socket's send buffer, when it has one.
func (c *Conn) SetWriteBuffer(n int) error {
	if s, ok := c.PacketConn.(interface{ SetWriteBuffer(int) error }); ok {
		return s.SetWriteBuffer(n)
	}
	return errors.New("relay: the wrapped socket has no send buffer to set")
}
