package discovery

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// Peer is one entry of the peer table.
type Peer struct {
	Key identity.PublicKey
	ID  identity.PeerID
	// Addr is the address the peer's messages come from and ours go to.
	Addr netip.AddrPort
	// LAN and WAN are the addresses the peer announced for itself.
	LAN, WAN netip.AddrPort
	// NewStyle: the peer speaks the new (ip_address) message forms.
	NewStyle bool
	// Bootstrap: the peer answers at a bootstrap address. It is listed,
	// introduced and churned like any peer but never depended on: it
	// does not count toward TargetPeers, and its address stays a
	// bootstrap address after it is dropped.
	Bootstrap bool
	// Added is when the peer entered the table; LastSeen when it was last
	// heard from.
	Added, LastSeen time.Time
}

// Mid returns the peer's py-ipv8 identifier (SHA-1 of its key).
func (p *Peer) Mid() [20]byte { return p.Key.Mid() }

// EventKind tells events apart.
type EventKind uint8

// Event kinds.
const (
	PeerAdded EventKind = iota + 1
	PeerRemoved
)

func (k EventKind) String() string {
	switch k {
	case PeerAdded:
		return "peer added"
	case PeerRemoved:
		return "peer removed"
	}
	return "unknown event"
}

// Event reports a change of the peer table.
type Event struct {
	Kind   EventKind
	Peer   Peer
	Reason string // why a peer was removed: "silent", "replaced"
}

// Send is one datagram the driver must send: payload of message MsgID in
// the walk's community, signed unless Unsigned.
type Send struct {
	To       netip.AddrPort
	MsgID    byte
	Unsigned bool
	Payload  []byte
}

// ActionKind tells actions apart.
type ActionKind uint8

// Action kinds.
const (
	// ActionSend: send Action.Send.
	ActionSend ActionKind = iota + 1
	// ActionEvent: deliver Action.Event.
	ActionEvent
)

// Action is one thing the core asks its driver to do, in order: send a
// datagram or deliver a peer-table event.
type Action struct {
	Kind  ActionKind
	Send  Send
	Event Event
}

// Stats counts what the walk did.
type Stats struct {
	IntroRequestsSent       uint64 // to peers, walkable and bootstrap addresses
	IntroRequestsAnswered   uint64 // requests we answered
	IntroRequestsRefused    uint64 // answered with peer-limit-reached
	IntroResponses          uint64 // responses matched to a pending request
	IntroTimeouts           uint64 // requests unanswered after IntroTimeout
	Unsolicited             uint64 // responses and pongs matching nothing pending
	PunctureRequestsSent    uint64
	PuncturesSent           uint64
	PuncturesReceived       uint64
	PunctureRequestsIgnored uint64 // from addresses we do not know
	PingsSent               uint64
	PongsSent               uint64
	BootstrapRounds         uint64
	PeersAdded              uint64
	PeersDropped            uint64 // silent past DropAfter
	Malformed               uint64 // payloads that did not decode
}

type pendingIntro struct {
	to        netip.AddrPort
	sent      time.Time
	bootstrap bool
	newStyle  bool
	tries     int // sends to this address in a row, for walkable retries
}

// walkTries is how often an introduced address is tried before it is
// forgotten: one lost datagram should not cost a node its only lead.
const walkTries = 2

type pendingPing struct {
	to   netip.AddrPort
	sent time.Time
}

type walkable struct {
	newStyle bool
	added    time.Time
	tries    int // unanswered requests so far
}

// Core is the walk as a state machine: it takes messages and the time,
// and returns datagrams to send and table events. It does no I/O, holds
// no goroutines and reads no clock; it is not safe for concurrent use.
type Core struct {
	cfg  Config
	rng  *rand.Rand
	self identity.PublicKey

	lan, wan netip.AddrPort // our own addresses

	peers     map[netip.AddrPort]*Peer
	byKey     map[identity.PublicKey]netip.AddrPort
	walkable  map[netip.AddrPort]walkable
	newStyle  map[netip.AddrPort]bool // bootstrap addresses known to speak the new form
	bootstrap map[netip.AddrPort]bool
	pending   map[uint16]pendingIntro
	pings     map[uint16]pendingPing
	lastPing  map[netip.AddrPort]time.Time

	lastBootstrap time.Time
	nextWalk      time.Time
	stats         Stats
	actions       []Action // pending, taken by Ready
	localFor      func(dst netip.Addr) netip.Addr
}

// NewCore returns a Core for the node with key self. cfg is populated
// with defaults; rng drives every random choice.
func NewCore(self identity.PublicKey, cfg Config, rng *rand.Rand) (*Core, error) {
	cfg, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	c := &Core{
		cfg:       cfg,
		rng:       rng,
		self:      self,
		lan:       unmap(cfg.LANAddress),
		wan:       unmap(cfg.LANAddress),
		localFor:  cfg.LocalAddrFor,
		peers:     make(map[netip.AddrPort]*Peer),
		byKey:     make(map[identity.PublicKey]netip.AddrPort),
		walkable:  make(map[netip.AddrPort]walkable),
		newStyle:  make(map[netip.AddrPort]bool),
		bootstrap: make(map[netip.AddrPort]bool),
		pending:   make(map[uint16]pendingIntro),
		pings:     make(map[uint16]pendingPing),
		lastPing:  make(map[netip.AddrPort]time.Time),
	}
	for _, a := range cfg.Bootstrap {
		c.bootstrap[a] = true
	}
	return c, nil
}

// Config returns the populated configuration.
func (c *Core) Config() Config { return c.cfg }

// Stats returns the counters.
func (c *Core) Stats() Stats { return c.stats }

// Addresses returns this node's LAN address and its WAN address as
// learned from introduction responses.
func (c *Core) Addresses() (lan, wan netip.AddrPort) { return c.lan, c.wan }

// Peers returns a copy of the table, in no particular order.
func (c *Core) Peers() []Peer {
	out := make([]Peer, 0, len(c.peers))
	for _, p := range c.peers {
		out = append(out, *p)
	}
	return out
}

// NumPeers returns the table's size.
func (c *Core) NumPeers() int { return len(c.peers) }

// Ready appends the pending actions to dst, in the order they arose,
// forgets them, and returns the time at which Tick must next be called.
func (c *Core) Ready(dst []Action) ([]Action, time.Time) {
	dst = append(dst, c.actions...)
	clear(c.actions) // drop references to payloads and peers
	c.actions = c.actions[:0]
	return dst, c.nextWalk
}

func (c *Core) emit(s Send) { c.actions = append(c.actions, Action{Kind: ActionSend, Send: s}) }

func (c *Core) emitEvent(e Event) { c.actions = append(c.actions, Action{Kind: ActionEvent, Event: e}) }

// Tick runs the timers due at now: introduction timeouts, pings of idle
// peers, dropping silent ones, and one walk step.
func (c *Core) Tick(now time.Time) {
	if now.Before(c.nextWalk) {
		return
	}
	c.nextWalk = now.Add(c.cfg.WalkInterval)
	c.expire(now)
	c.churn(now)
	c.walk(now)
}

// expire forgets introduction requests and pings that went unanswered.
func (c *Core) expire(now time.Time) {
	// Sorted, not map order: the simulator replays runs from a seed.
	for _, id := range slices.Sorted(maps.Keys(c.pending)) {
		p := c.pending[id]
		if now.Sub(p.sent) >= c.cfg.IntroTimeout {
			delete(c.pending, id)
			c.stats.IntroTimeouts++
			if p.tries > 0 && p.tries < walkTries {
				c.learn(now, p.to, p.newStyle)
				if w, ok := c.walkable[p.to]; ok {
					w.tries = p.tries
					c.walkable[p.to] = w
				}
			}
		}
	}
	for id, p := range c.pings {
		if now.Sub(p.sent) >= c.cfg.IntroTimeout {
			delete(c.pings, id)
		}
	}
	for a, w := range c.walkable {
		if now.Sub(w.added) >= c.cfg.DropAfter {
			delete(c.walkable, a)
		}
	}
}

// churn pings idle peers and drops silent ones. A peer idle past
// PingAfter is pinged, and pinged again every third of the remaining
// time to DropAfter, so it gets about three chances.
func (c *Core) churn(now time.Time) {
	repin := (c.cfg.DropAfter - c.cfg.PingAfter) / 3
	addrs := make([]netip.AddrPort, 0, len(c.peers))
	for a := range c.peers {
		addrs = append(addrs, a)
	}
	sortAddrs(addrs) // not map order: the simulator replays runs from a seed
	for _, addr := range addrs {
		p := c.peers[addr]
		idle := now.Sub(p.LastSeen)
		switch {
		case idle >= c.cfg.DropAfter:
			c.removePeer(addr, "silent")
			c.stats.PeersDropped++
		case idle >= c.cfg.PingAfter:
			if last, ok := c.lastPing[addr]; ok && now.Sub(last) < repin && last.After(p.LastSeen) {
				continue
			}
			c.lastPing[addr] = now
			id := c.newID(func(id uint16) bool { _, ok := c.pings[id]; return ok })
			c.pings[id] = pendingPing{to: addr, sent: now}
			ping := ipv8.Ping{Identifier: id}
			c.emit(Send{To: addr, MsgID: ipv8.MsgPing, Unsigned: true, Payload: ping.Append(nil)})
			c.stats.PingsSent++
		}
	}
}

// walk takes one step of the random walk while the table is below its
// target: to an introduced (walkable) address or a random peer, or, with
// neither, to the bootstrap addresses at most every BootstrapInterval.
func (c *Core) walk(now time.Time) {
	peers := c.peersDependedOn()
	if len(peers) >= c.cfg.TargetPeers {
		return
	}
	useWalkable := len(c.walkable) > 0 && (len(peers) == 0 || c.rng.IntN(2) == 0)
	switch {
	case len(peers) > 0 && c.rng.IntN(20) == 0 && c.bootstrapDue(now):
		// Once in a while, as py-ipv8 does, ask the bootstrap nodes
		// again even though the table is not empty: a group of nodes
		// that only know each other would never grow otherwise.
		c.bootstrapRound(now)
	case useWalkable:
		addr := pickKey(c.rng, c.walkable)
		w := c.walkable[addr]
		delete(c.walkable, addr)
		c.sendIntroRequest(now, addr, w.newStyle, false, w.tries+1)
	case len(peers) > 0:
		p := c.peers[pickKey(c.rng, peers)]
		c.sendIntroRequest(now, p.Addr, p.NewStyle, false, 0)
	default:
		// Bootstrap peers are asked only here, at most every
		// BootstrapInterval: never depended on.
		c.bootstrapRound(now)
	}
}

// bootstrapDue reports whether a bootstrap round may run at now.
func (c *Core) bootstrapDue(now time.Time) bool {
	return len(c.cfg.Bootstrap) > 0 && (c.lastBootstrap.IsZero() || now.Sub(c.lastBootstrap) >= c.cfg.BootstrapInterval)
}

func (c *Core) bootstrapRound(now time.Time) {
	if !c.bootstrapDue(now) {
		return
	}
	c.lastBootstrap = now
	c.stats.BootstrapRounds++
	for _, a := range c.cfg.Bootstrap {
		if !c.isSelf(a) {
			c.sendIntroRequest(now, a, c.newStyle[a], true, 0)
		}
	}
}

// peersDependedOn returns the addresses of the peers that are not
// bootstrap peers: those the walk counts and walks to.
func (c *Core) peersDependedOn() map[netip.AddrPort]struct{} {
	m := make(map[netip.AddrPort]struct{}, len(c.peers))
	for a, p := range c.peers {
		if !p.Bootstrap {
			m[a] = struct{}{}
		}
	}
	return m
}

// WalkTo sends an introduction request to addr now (an address from a
// link, a LAN announcement or the command line).
func (c *Core) WalkTo(now time.Time, addr netip.AddrPort) {
	addr = unmap(addr)
	if addr.IsValid() && !c.isSelf(addr) {
		c.sendIntroRequest(now, addr, false, c.bootstrap[addr], 0)
	}
}

// addrsFor returns the LAN and WAN addresses to announce to dst. A
// wildcard LAN address (a socket bound to 0.0.0.0 or ::) becomes the
// address of the interface that reaches dst, as Config.LocalAddrFor
// reports it; a WAN address not yet learned from a response is the LAN
// address.
func (c *Core) addrsFor(dst netip.AddrPort) (lan, wan netip.AddrPort) {
	lan, wan = c.lan, c.wan
	if lan.Addr().IsUnspecified() && c.localFor != nil {
		if ip := c.localFor(dst.Addr()); ip.IsValid() {
			lan = netip.AddrPortFrom(ip.Unmap(), lan.Port())
		}
	}
	if !wan.IsValid() || wan.Addr().IsUnspecified() {
		wan = lan
	}
	return lan, wan
}

// sendIntroRequest sends a request to to. tries counts the requests in a
// row to an introduced address (0 for peers and bootstrap nodes).
func (c *Core) sendIntroRequest(now time.Time, to netip.AddrPort, newStyle, bootstrap bool, tries int) {
	id := c.newID(func(id uint16) bool { _, ok := c.pending[id]; return ok })
	lan, wan := c.addrsFor(to)
	req := ipv8.IntroRequest{
		NewStyle:         newStyle || to.Addr().Is6() || lan.Addr().Is6() || wan.Addr().Is6(),
		Destination:      to,
		SourceLAN:        lan,
		SourceWAN:        wan,
		SupportsNewStyle: true,
		Advice:           true,
		Identifier:       id,
	}
	p, err := req.Append(nil)
	if err != nil {
		return
	}
	c.pending[id] = pendingIntro{to: to, sent: now, bootstrap: bootstrap, newStyle: newStyle, tries: tries}
	c.emit(Send{To: to, MsgID: req.MsgID(), Payload: p})
	c.stats.IntroRequestsSent++
}

// newID returns a random identifier for which taken is false.
func (c *Core) newID(taken func(uint16) bool) uint16 {
	for {
		id := uint16(c.rng.Uint32())
		if !taken(id) {
			return id
		}
	}
}

// pickKey returns a uniformly random key of m, which must not be empty.
// Map iteration order is not random enough (nor deterministic), so keys
// are sorted by a stable order first.
func pickKey[V any](rng *rand.Rand, m map[netip.AddrPort]V) netip.AddrPort {
	keys := make([]netip.AddrPort, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortAddrs(keys)
	return keys[rng.IntN(len(keys))]
}
