package dht

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/ratelimit"
)

// Outgoing is a message Core wants sent. Payload is owned by the receiver of
// Ready.
type Outgoing struct {
	To      netip.AddrPort
	Payload []byte
}

// LookupID names a lookup started by Bootstrap, Provide, FindProviders or
// FindNode. IDs are never reused by one Core.
type LookupID uint64

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventProvider: a lookup found a new, verified provider.
	EventProvider EventKind = 1 + iota
	// EventDone: a lookup ended; Err says whether it failed. It is the last
	// event of its lookup.
	EventDone
)

// Event is an output of Core about one lookup.
type Event struct {
	Lookup   LookupID
	Kind     EventKind
	Provider Provider    // EventProvider
	Closest  []Contact   // EventDone: the closest nodes that answered
	Stats    LookupStats // EventDone
	Err      error       // EventDone: nil, ErrNoContacts, ErrNotStored
}

// LookupStats describes a finished lookup.
type LookupStats struct {
	Requests int // requests sent (queries and stores)
	Replies  int // replies received
	Timeouts int // requests that timed out
	Slow     int // queries still unanswered after SlowAfter (another was sent beside each)
	// Hops is the length of the referral chain to the first provider found
	// (provider lookups that found one), else to the closest node that
	// answered. Querying a node from our own table is one hop.
	Hops      int
	Providers int // distinct providers found
	Stored    int // Provide: nodes that acknowledged storing the record
	Duration  time.Duration
}

// ActionKind says what an Action asks of the driver.
type ActionKind uint8

// Action kinds.
const (
	// ActionSend: send Action.Send.Payload to Action.Send.To.
	ActionSend ActionKind = 1 + iota
	// ActionEvent: deliver Action.Event to whoever started its lookup.
	ActionEvent
)

// Action is one output of Core, in the order Core produced it.
type Action struct {
	Kind  ActionKind
	Send  Outgoing // ActionSend
	Event Event    // ActionEvent
}

// Counters count what Core received, sent and refused. Every refusal of bad
// input increments exactly one refusal counter.
type Counters struct {
	MessagesIn  uint64 // payloads handed to HandleMessage
	MessagesOut uint64 // messages produced
	// Refusals of bad input.
	Malformed         uint64 // undecodable payloads (truncated, bad lengths, unknown version or type)
	Oversized         uint64 // payloads over MaxMessageSize
	RateLimited       uint64 // requests over the sender's rate
	HostRateLimited   uint64 // requests over the rate of the sender's host (HostRequestRate)
	UnexpectedReplies uint64 // replies to no pending request, or from another node than asked
	BadSignatures     uint64 // provider records whose signature does not verify
	BadTokens         uint64 // add provider without a valid token for the sender
	ForeignRecords    uint64 // add provider carrying another publisher's record, or records for another key
	BadExpiry         uint64 // records already expired or living too long
	StoreFull         uint64 // records refused by storage bounds
	Replays           uint64 // requests seen before from the same sender with the same transaction ID
	VerifySkipped     uint64 // requesters not verified (so not admitted): MaxVerifying in flight
	// Other events.
	Timeouts      uint64 // requests that got no reply in time
	BackedOff     uint64 // requests not sent: the address has not answered lately
	RecordsStored uint64 // records accepted from others
}

type purpose uint8

const (
	forLookup    purpose = iota + 1 // a lookup query
	forStore                        // an add provider of a Provide
	forBootstrap                    // a ping to a bootstrap address
	forLiveness                     // a ping to a bucket's stale head
	forVerify                       // a ping proving a requester's address before it enters the table
	forPage                         // a later page of a storing node's records (provider lookups)
)

// request is a pending request awaiting its reply.
type request struct {
	txid     uint32
	typ      MsgType
	to       netip.AddrPort
	id       identity.PeerID // expected responder; zero for bootstrap pings
	deadline time.Time
	purpose  purpose
	lookup   LookupID
	cand     *cand
	sent     bool      // false: held back, the address is backed off (see silence)
	skip     uint16    // pages: the request's skip
	slowAt   time.Time // lookup queries: when it stops counting against Alpha
	slow     bool      // lookup queries: past slowAt, no longer counted in inflight
}

// provision is content we announce.
type provision struct {
	next time.Time // next republish
}

// Core is the DHT state machine, following the core contract of
// docs/architecture.md: it does no I/O and no logging; inputs carry `now`;
// outputs (messages and events) are drained with Ready, which also says when
// Tick must next be called. It is not safe for concurrent use: one owner
// goroutine calls it.
type Core struct {
	cfg    Config
	signer Signer
	self   identity.PeerID
	rng    *rand.Rand
	// pageSalt keys the order in which we list a content ID's records to
	// one requester, so its pages (get providers with a skip) follow one
	// order while other requesters see others.
	pageSalt [2]uint64

	table   *table
	store   *store
	tokens  tokens
	limiter *ratelimit.Sources

	pending    map[uint32]*request
	verifying  map[Contact]struct{} // requesters being pinged before admission
	silent     map[netip.AddrPort]*silence
	replays    replayCache
	lookups    map[LookupID]*lookup
	nextLookup LookupID
	providing  map[Key]*provision
	observed   netip.AddrPort
	nextMaint  time.Time

	out      []Action // pending, drained by Ready
	counters Counters
}

const maintEvery = time.Minute

// NewCore makes a Core for the node whose key signs with signer. rng must be
// seeded by the caller and used by nothing else.
func NewCore(cfg Config, signer Signer, rng *rand.Rand, now time.Time) (*Core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.Addrs = slices.Clone(cfg.Addrs)
	self := signer.Public().PeerID()
	c := &Core{
		cfg: cfg, signer: signer, self: self, rng: rng,
		table:     newTable(self, cfg.K, cfg.MaxFailures, cfg.PingAfter, now),
		store:     newStore(cfg.MaxRecords, cfg.MaxRecordsPerProvider, cfg.MaxProvidersPerKey, cfg.MaxProvidersPerGroup),
		tokens:    newTokens(rng, now, cfg.TokenRotation),
		limiter:   ratelimit.NewSources(cfg.RequestRate, float64(cfg.RequestBurst), cfg.HostRequestRate, float64(cfg.HostRequestBurst), cfg.MaxSenders),
		pending:   make(map[uint32]*request),
		verifying: make(map[Contact]struct{}),
		silent:    make(map[netip.AddrPort]*silence),
		replays:   newReplayCache(now),
		lookups:   make(map[LookupID]*lookup),
		providing: make(map[Key]*provision),
		nextMaint: now.Add(maintEvery),
		pageSalt:  [2]uint64{rng.Uint64(), rng.Uint64()},
	}
	return c, nil
}

// Self returns our Kademlia ID.
func (c *Core) Self() identity.PeerID { return c.self }

// Counters returns a copy of the counters.
func (c *Core) Counters() Counters { return c.counters }

// TableSize returns the number of nodes in the routing table.
func (c *Core) TableSize() int { return c.table.Len() }

// StoredRecords returns the number of provider records held for others.
func (c *Core) StoredRecords() int { return c.store.Len() }

// Closest returns up to n nodes of the routing table closest to target.
func (c *Core) Closest(target Key, n int) []Contact { return c.table.closest(nil, target, n) }

// SetAddrs sets the addresses put in our provider records (at most
// MaxRecordAddrs; unusable ones are dropped).
func (c *Core) SetAddrs(addrs []netip.AddrPort) {
	c.cfg.Addrs = nil // never write into the caller's array
	for _, a := range addrs {
		if validAddr(a) && len(c.cfg.Addrs) < MaxRecordAddrs {
			c.cfg.Addrs = append(c.cfg.Addrs, a)
		}
	}
}

// Ready appends the actions produced since the last call (messages to send
// and lookup events, in order) to dst and returns it, with the time at
// which Tick must next be called (never zero: maintenance is periodic).
// Payloads in the actions belong to the caller.
func (c *Core) Ready(dst []Action) ([]Action, time.Time) {
	dst = append(dst, c.out...)
	clear(c.out)
	c.out = c.out[:0]
	return dst, c.nextDeadline()
}

// nextDeadline returns when Tick must next be called.
func (c *Core) nextDeadline() time.Time {
	d := c.nextMaint
	for _, r := range c.pending {
		if r.deadline.Before(d) {
			d = r.deadline
		}
		if (r.purpose == forLookup || r.purpose == forPage) && !r.slow && r.slowAt.Before(d) {
			d = r.slowAt
		}
	}
	return d
}

// Tick fires timeouts and periodic work due at now.
func (c *Core) Tick(now time.Time) {
	var expired []*request
	for _, r := range c.pending {
		if !now.Before(r.deadline) {
			expired = append(expired, r)
		}
	}
	slices.SortFunc(expired, func(a, b *request) int {
		return cmp.Or(a.deadline.Compare(b.deadline), cmp.Compare(a.txid, b.txid))
	})
	for _, r := range expired {
		delete(c.pending, r.txid)
		c.counters.Timeouts++
		if r.sent {
			c.unanswered(now, r.to)
		}
		c.timedOut(now, r)
	}
	c.slowQueries(now)
	if !now.Before(c.nextMaint) {
		c.maintain(now)
		c.nextMaint = now.Add(maintEvery)
	}
}

func (c *Core) timedOut(now time.Time, r *request) {
	switch r.purpose {
	case forVerify:
		// Not admitted. The table is left alone: the ping went to the
		// address claimed by a datagram that may have been replayed, and
		// must not count against the real entry.
		delete(c.verifying, Contact{ID: r.id, Addr: r.to})
	case forLiveness:
		c.table.failed(r.id, now)
	case forBootstrap:
		if l := c.lookups[r.lookup]; l != nil {
			l.stats.Timeouts++
			c.bootstrapAnswered(now, l)
		}
	case forLookup:
		c.table.failed(r.id, now)
		if l := c.lookups[r.lookup]; l != nil && r.cand.state == candInflight {
			l.stats.Timeouts++
			r.cand.state = candFailed
			if !r.slow {
				l.inflight--
			}
			c.step(now, l)
		}
	case forPage:
		if l := c.lookups[r.lookup]; l != nil && !r.slow {
			l.pagesPending--
			c.step(now, l)
		}
	case forStore:
		c.table.failed(r.id, now)
		if l := c.lookups[r.lookup]; l != nil {
			l.stats.Timeouts++
			l.storePending--
			c.maybeFinishStore(now, l)
		}
	}
}

// slowQueries lets every lookup query unanswered for SlowAfter stop
// counting against Alpha, so the lookup sends another beside it: dead or
// silent nodes (departed Sybils, churn) cost SlowAfter each, not
// RequestTimeout. The query may still answer until its deadline.
func (c *Core) slowQueries(now time.Time) {
	var slow []*request
	for _, r := range c.pending {
		if (r.purpose == forLookup || r.purpose == forPage) && !r.slow && !now.Before(r.slowAt) {
			slow = append(slow, r)
		}
	}
	slices.SortFunc(slow, func(a, b *request) int {
		return cmp.Or(a.slowAt.Compare(b.slowAt), cmp.Compare(a.txid, b.txid))
	})
	for _, r := range slow {
		r.slow = true
		l := c.lookups[r.lookup]
		if l != nil && r.purpose == forPage {
			l.pagesPending-- // a page late by SlowAfter no longer holds the lookup's end
			c.step(now, l)
			continue
		}
		if l == nil || r.cand.state != candInflight {
			continue
		}
		l.stats.Slow++
		l.inflight--
		c.step(now, l)
	}
}

// maintain rotates the token secret, expires records, republishes and
// refreshes stale buckets.
func (c *Core) maintain(now time.Time) {
	c.tokens.rotate(c.rng, now)
	c.store.expire(now)
	c.replays.rotate(now)
	keys := make([]Key, 0, len(c.providing))
	for k, p := range c.providing {
		if !now.Before(p.next) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b Key) int { return slices.Compare(a[:], b[:]) })
	for _, k := range keys {
		c.providing[k].next = now.Add(c.cfg.RepublishInterval)
		c.startLookup(now, kindProvide, k, true)
	}
	for _, i := range c.table.staleBuckets(nil, now.Add(-c.cfg.RefreshInterval)) {
		c.startLookup(now, kindFindNode, randomKeyInBucket(c.rng, c.self, i), true)
	}
}

// send queues a message that needs no reply.
func (c *Core) send(to netip.AddrPort, m Message) {
	c.out = append(c.out, Action{Kind: ActionSend, Send: Outgoing{To: to, Payload: m.Append(make([]byte, 0, 64))}})
	c.counters.MessagesOut++
}

// request queues a request and remembers it until its reply or timeout.
func (c *Core) request(now time.Time, to netip.AddrPort, id identity.PeerID, m Message, p purpose, l LookupID, cd *cand) {
	for {
		m.TxID = c.rng.Uint32()
		if _, busy := c.pending[m.TxID]; !busy && m.TxID != 0 {
			break
		}
	}
	r := &request{txid: m.TxID, typ: m.Type, to: to, id: id,
		deadline: now.Add(c.cfg.RequestTimeout), slowAt: now.Add(c.cfg.SlowAfter), purpose: p, lookup: l, cand: cd}
	c.pending[m.TxID] = r
	if s := c.silent[to]; s != nil && now.Before(s.until) {
		c.counters.BackedOff++ // held back; it times out as if lost
		return
	}
	r.skip = m.Skip
	r.sent = true
	c.send(to, m)
}

// seenNode updates the routing table with a node that proved its key, and
// pings a stale bucket head if the table asks for it.
func (c *Core) seenNode(now time.Time, ct Contact) {
	if !validAddr(ct.Addr) {
		return
	}
	if head, ok := c.table.seen(ct, now); ok {
		c.request(now, head.Addr, head.ID, Message{Type: MsgPing}, forLiveness, 0, nil)
	}
}

// recordAddrs returns the addresses to put in our records.
func (c *Core) recordAddrs() []netip.AddrPort {
	if len(c.cfg.Addrs) > 0 {
		return slices.Clone(c.cfg.Addrs)
	}
	if validAddr(c.observed) {
		return []netip.AddrPort{c.observed}
	}
	return nil
}

func (c *Core) emit(e Event) { c.out = append(c.out, Action{Kind: ActionEvent, Event: e}) }

// HandleMessage processes one payload that arrived from `from`, sent (and
// signed, at the datagram layer) by the holder of sender.
func (c *Core) HandleMessage(now time.Time, from netip.AddrPort, sender identity.PublicKey, payload []byte) {
	c.counters.MessagesIn++
	m, err := DecodeMessage(payload)
	if err != nil {
		if len(payload) > MaxMessageSize {
			c.counters.Oversized++
		} else {
			c.counters.Malformed++
		}
		return
	}
	id := sender.PeerID()
	if id == c.self {
		c.counters.UnexpectedReplies++
		return
	}
	if m.Type.isRequest() {
		if ok, byHost := c.limiter.Allow(from, now); !ok {
			if byHost {
				c.counters.HostRateLimited++
			} else {
				c.counters.RateLimited++
			}
			return
		}
		if !c.replays.add(now, replayKey{id: id, txid: m.TxID, typ: m.Type}) {
			c.counters.Replays++
			return
		}
		delete(c.silent, from)
		c.heardRequest(now, Contact{ID: id, Addr: from})
		c.handleRequest(now, from, sender, id, m)
		return
	}
	// A reply counts only from the address the request went to, signed by
	// the node asked: a round trip that proves the address.
	r := c.pending[m.TxID]
	if r == nil || replyType(r.typ) != m.Type || r.to != from || (!r.id.IsZero() && r.id != id) {
		c.counters.UnexpectedReplies++
		return
	}
	delete(c.pending, m.TxID)
	delete(c.silent, from)
	if r.purpose == forVerify {
		delete(c.verifying, Contact{ID: r.id, Addr: r.to})
	}
	c.seenNode(now, Contact{ID: id, Addr: from})
	c.handleReply(now, r, id, from, m)
}

// heardRequest takes note of a signed request from ct. A node already in
// the table (or its replacement cache) at that address is refreshed. Any
// other (a new node, or a known one at a new address, which is what a
// replayed datagram looks like) is admitted, or its entry moved, only once
// it answers a ping sent to that address: a round trip proves the address,
// a signature alone does not. A new node whose bucket is full of recently
// seen entries is not pinged at all.
func (c *Core) heardRequest(now time.Time, ct Contact) {
	if !validAddr(ct.Addr) {
		return
	}
	if c.table.knows(ct) { // in the table or its replacement cache at that address
		c.seenNode(now, ct)
		return
	}
	if _, listed := c.table.addrOf(ct.ID); !listed && !c.table.wantsNewcomer(ct.ID, now) {
		// Its bucket is full and lively: it could only be a replacement
		// candidate, and candidates come from our own round trips too.
		// Not worth a ping.
		return
	}
	if _, busy := c.verifying[ct]; busy {
		return
	}
	if len(c.verifying) >= maxVerifying {
		c.counters.VerifySkipped++
		return
	}
	c.verifying[ct] = struct{}{}
	c.request(now, ct.Addr, ct.ID, Message{Type: MsgPing}, forVerify, 0, nil)
}

// maxVerifying bounds the pings in flight that verify requesters (each
// lives RequestTimeout); beyond it, new requesters are answered but not
// admitted to the table.
const maxVerifying = 64

// silence is an address whose requests went unanswered. From the second
// unanswered request in a row (a table entry is dropped at MaxFailures, 2),
// requests to it are held back until `until`, and the wait doubles with
// every further one (RequestTimeout*2^(fails-1), at most maxBackoff). Any
// message from the address ends it. One lost reply, as under load, holds
// nothing back.
type silence struct {
	fails int
	until time.Time
}

// maxBackoff caps the wait between requests to a silent address.
const maxBackoff = 5 * time.Minute

// maxSilent bounds the table of silent addresses; when it is full, entries
// whose wait is over are dropped, and if none is, the new address is not
// backed off.
const maxSilent = 4096

// unanswered records that a request sent to addr got no reply.
func (c *Core) unanswered(now time.Time, addr netip.AddrPort) {
	s := c.silent[addr]
	if s == nil {
		if len(c.silent) >= maxSilent {
			for a, x := range c.silent { // deletes every match: order does not matter
				if !now.Before(x.until) {
					delete(c.silent, a)
				}
			}
			if len(c.silent) >= maxSilent {
				return
			}
		}
		s = &silence{}
		c.silent[addr] = s
	}
	s.fails++
	if s.fails < 2 {
		return
	}
	wait := maxBackoff
	if s.fails < 16 {
		wait = min(maxBackoff, c.cfg.RequestTimeout<<(s.fails-1))
	}
	s.until = now.Add(wait)
}

func replyType(t MsgType) MsgType {
	switch t {
	case MsgPing:
		return MsgPong
	case MsgFindNode:
		return MsgNodes
	case MsgGetProviders:
		return MsgProviders
	case MsgAddProvider:
		return MsgAddProviderAck
	}
	return 0
}

func (c *Core) handleReply(now time.Time, r *request, id identity.PeerID, from netip.AddrPort, m Message) {
	switch r.purpose {
	case forLiveness, forVerify:
		// seenNode already admitted or refreshed the entry.
		if validAddr(m.Observed) {
			c.observed = m.Observed
		}
	case forBootstrap:
		if validAddr(m.Observed) {
			c.observed = m.Observed
		}
		if l := c.lookups[r.lookup]; l != nil {
			l.stats.Replies++
			l.reached++
			c.bootstrapAnswered(now, l)
		}
	case forLookup:
		l := c.lookups[r.lookup]
		if l == nil || r.cand.state != candInflight {
			return
		}
		l.stats.Replies++
		if !r.slow {
			l.inflight--
		}
		r.cand.state = candAnswered
		r.cand.token = m.Token
		c.lookupReply(now, l, r.cand, m)
		c.step(now, l)
	case forPage:
		l := c.lookups[r.lookup]
		if l == nil {
			return
		}
		if !r.slow {
			l.pagesPending--
		}
		c.lookupRecords(now, l, r.cand, m, r.skip)
		c.step(now, l)
	case forStore:
		l := c.lookups[r.lookup]
		if l == nil {
			return
		}
		l.stats.Replies++
		if m.Status == AckStored {
			l.stats.Stored++
		}
		l.storePending--
		c.maybeFinishStore(now, l)
	}
}

// checkRecord validates a record for key received at now, counting the
// reason of a refusal. It returns the ack status.
func (c *Core) checkRecord(r *Record, key Key, now time.Time) uint8 {
	switch {
	case r.Content != key:
		c.counters.ForeignRecords++
		return AckForeignRecord
	case r.Expires <= now.Unix() || r.Expires > now.Add(c.cfg.RecordTTL+10*time.Minute).Unix():
		c.counters.BadExpiry++
		return AckBadExpiry
	case !r.Verify():
		c.counters.BadSignatures++
		return AckBadSignature
	}
	return AckStored
}

func (c *Core) String() string { return fmt.Sprintf("dht.Core(%s)", c.self.Short()) }
