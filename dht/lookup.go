package dht

import (
	"slices"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

type lookupKind uint8

const (
	kindFindNode  lookupKind = iota + 1 // find node queries
	kindProviders                       // get providers queries, report providers
	kindProvide                         // get providers queries (for tokens), then add provider
	kindBootstrap                       // pings to addresses, then a find node for self
)

type lookupPhase uint8

const (
	phasePing lookupPhase = iota + 1
	phaseQuery
	phaseStore
	phaseDone
)

type candState uint8

const (
	candNew candState = iota
	candInflight
	candAnswered
	candFailed
)

// cand is a node on a lookup's shortlist.
type cand struct {
	Contact
	state candState
	depth int    // referral hops from our table (nodes from our table: 1)
	token []byte // from its providers reply
	pages int    // later pages of records asked of it
}

// lookup is an iterative Kademlia lookup.
//
// The shortlist holds candidates sorted by distance to the target. Up to
// alpha queries are in flight, always to the closest not yet queried
// candidate among the k closest that have not failed. The lookup ends when
// those k closest have all answered (or fewer than k remain and all of
// them answered). Replies add the contacts they carry to the shortlist;
// failed (timed out) candidates drop out of the count.
type lookup struct {
	id     LookupID
	kind   lookupKind
	phase  lookupPhase
	target Key
	quiet  bool // internal: no events
	start  time.Time

	cands    []*cand
	known    map[identity.PeerID]struct{}
	inflight int

	providers    map[identity.PeerID]struct{}
	pagesPending int // provider lookups: later pages asked and not yet answered (or slow)
	pingsPending int // bootstrap
	reached      int // bootstrap: addresses that answered
	storePending int // provide
	record       Record
	stats        LookupStats
}

const maxCandsPerK = 8 // shortlist bound: maxCandsPerK*k

func (c *Core) newLookup(now time.Time, kind lookupKind, target Key, quiet bool) *lookup {
	c.nextLookup++
	l := &lookup{id: c.nextLookup, kind: kind, phase: phaseQuery, target: target, quiet: quiet, start: now,
		known: make(map[identity.PeerID]struct{}), providers: make(map[identity.PeerID]struct{})}
	c.lookups[l.id] = l
	return l
}

// startLookup begins a query-phase lookup seeded from the routing table.
func (c *Core) startLookup(now time.Time, kind lookupKind, target Key, quiet bool) *lookup {
	l := c.newLookup(now, kind, target, quiet)
	c.seedLookup(now, l)
	return l
}

func (c *Core) seedLookup(now time.Time, l *lookup) {
	l.phase = phaseQuery
	c.table.touch(l.target, now)
	for _, ct := range c.table.closest(nil, l.target, c.cfg.K) {
		c.addCand(l, ct, 1)
	}
	c.step(now, l)
}

// addCand inserts a contact into the shortlist if new.
func (c *Core) addCand(l *lookup, ct Contact, depth int) {
	if ct.ID == c.self || !validAddr(ct.Addr) {
		return
	}
	if _, ok := l.known[ct.ID]; ok {
		return
	}
	l.known[ct.ID] = struct{}{}
	i, _ := slices.BinarySearchFunc(l.cands, ct.ID, func(x *cand, id identity.PeerID) int {
		return cmpDist(l.target, x.ID, id)
	})
	max := maxCandsPerK * c.cfg.K
	if i >= max {
		return
	}
	l.cands = slices.Insert(l.cands, i, &cand{Contact: ct, depth: depth})
	if len(l.cands) > max {
		l.cands = l.cands[:max]
	}
}

// step sends queries while fewer than alpha are in flight, and ends the
// query phase when the k closest live candidates have answered.
func (c *Core) step(now time.Time, l *lookup) {
	if l.phase != phaseQuery {
		return
	}
	if l.kind == kindProviders && len(l.providers) >= c.cfg.MaxProvidersPerLookup {
		c.finish(now, l, nil)
		return
	}
	for l.inflight < c.cfg.Alpha {
		next := l.nextCand(c.cfg.K)
		if next == nil {
			break
		}
		next.state = candInflight
		l.inflight++
		l.stats.Requests++
		typ := MsgFindNode
		if l.kind == kindProviders || l.kind == kindProvide {
			typ = MsgGetProviders
		}
		c.request(now, next.Addr, next.ID, Message{Type: typ, Target: l.target}, forLookup, l.id, next)
	}
	if l.queryDone(c.cfg.K) && l.pagesPending <= 0 {
		c.endQuery(now, l)
	}
}

// nextCand returns the closest unqueried candidate among the k closest that
// have not failed, or nil.
func (l *lookup) nextCand(k int) *cand {
	n := 0
	for _, cd := range l.cands {
		if cd.state == candFailed {
			continue
		}
		if cd.state == candNew {
			return cd
		}
		if n++; n >= k {
			break
		}
	}
	return nil
}

// queryDone reports whether every one of the k closest live candidates has
// answered.
func (l *lookup) queryDone(k int) bool {
	n := 0
	for _, cd := range l.cands {
		switch cd.state {
		case candFailed:
			continue
		case candNew, candInflight:
			return false
		}
		if n++; n >= k {
			break
		}
	}
	return true
}

// closestAnswered returns up to n answered candidates, closest first.
func (l *lookup) closestAnswered(n int) []*cand {
	var out []*cand
	for _, cd := range l.cands {
		if cd.state == candAnswered {
			out = append(out, cd)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// lookupReply takes in the contacts and records of a reply.
func (c *Core) lookupReply(now time.Time, l *lookup, from *cand, m Message) {
	for _, ct := range m.Contacts {
		c.addCand(l, ct, from.depth+1)
	}
	if l.kind != kindProviders {
		return
	}
	c.lookupRecords(now, l, from, m, 0)
}

// maxPages bounds the later pages a provider lookup asks of one storing
// node: enough for a full content ID (MaxProvidersPerKey, 64, at 5 records
// a page).
const maxPages = 13

// lookupRecords takes in the records of a providers reply (the page that
// skipped skip records), and asks the storing node for the next page while
// its pages bring records: one lookup so sees every record a storing node
// holds, not a datagram's sample of them, so Sybil records on many
// networks cannot hide the publisher's.
func (c *Core) lookupRecords(now time.Time, l *lookup, from *cand, m Message, skip uint16) {
	for i := range m.Records {
		r := &m.Records[i]
		if _, dup := l.providers[r.Key.PeerID()]; dup {
			continue // reported already; skip the signature check
		}
		if st := c.checkRecord(r, l.target, now); st != AckStored {
			continue
		}
		c.foundProvider(l, r, from.depth)
	}
	if len(m.Records) == 0 || from.pages >= maxPages || l.phase != phaseQuery {
		return
	}
	from.pages++
	l.pagesPending++
	l.stats.Requests++
	c.request(now, from.Addr, from.ID, Message{Type: MsgGetProviders, Target: l.target, Skip: skip + uint16(len(m.Records))}, forPage, l.id, from)
}

func (c *Core) foundProvider(l *lookup, r *Record, depth int) {
	pid := r.Key.PeerID()
	if _, dup := l.providers[pid]; dup || len(l.providers) >= c.cfg.MaxProvidersPerLookup {
		return
	}
	l.providers[pid] = struct{}{}
	l.stats.Providers++
	if l.stats.Providers == 1 {
		l.stats.Hops = depth
	}
	if !l.quiet {
		c.emit(Event{Lookup: l.id, Kind: EventProvider, Provider: r.provider()})
	}
}

// endQuery ends the query phase: a provide moves on to storing, the others
// finish.
func (c *Core) endQuery(now time.Time, l *lookup) {
	if l.kind == kindProvide {
		c.storePhase(now, l)
		return
	}
	c.finish(now, l, nil)
}

func (c *Core) finish(now time.Time, l *lookup, err error) {
	l.phase = phaseDone
	delete(c.lookups, l.id)
	if l.kind != kindProviders || l.stats.Providers == 0 {
		if best := l.closestAnswered(1); len(best) > 0 {
			l.stats.Hops = best[0].depth
		} else {
			l.stats.Hops = 0
		}
	}
	if l.kind == kindBootstrap && err == nil && len(l.closestAnswered(1)) == 0 && c.table.Len() == 0 {
		err = ErrNoContacts
	}
	l.stats.Duration = now.Sub(l.start)
	if l.kind == kindBootstrap && err == nil && !c.cfg.NoJoinRefresh {
		c.joinRefresh(now, l)
	}
	if l.quiet {
		return
	}
	var closest []Contact
	for _, cd := range l.closestAnswered(c.cfg.K) {
		closest = append(closest, cd.Contact)
	}
	c.emit(Event{Lookup: l.id, Kind: EventDone, Closest: closest, Stats: l.stats, Err: err})
}

// joinRefresh looks up a random ID in every bucket farther than our closest
// neighbour, as Kademlia's join does, so the table learns all of the ring.
func (c *Core) joinRefresh(now time.Time, l *lookup) {
	best := l.closestAnswered(1)
	if len(best) == 0 {
		return
	}
	for i := commonPrefixLen(c.self, best[0].ID) - 1; i >= 0; i-- {
		c.startLookup(now, kindFindNode, randomKeyInBucket(c.rng, c.self, i), true)
	}
}

// storePhase sends our signed record to the k closest nodes that answered
// with a token, and keeps it ourselves when we are among the k closest.
func (c *Core) storePhase(now time.Time, l *lookup) {
	l.phase = phaseStore
	l.record = Record{Content: l.target, Expires: now.Add(c.cfg.RecordTTL).Unix(), Addrs: c.recordAddrs()}
	l.record.sign(c.signer)
	closest := l.closestAnswered(c.cfg.K)
	if len(closest) < c.cfg.K || cmpDist(l.target, c.self, closest[len(closest)-1].ID) < 0 {
		c.store.put(l.record, ownGroup) // best effort: our own copy answers lookups that reach us
	}
	for _, cd := range closest {
		if len(cd.token) == 0 {
			continue
		}
		l.storePending++
		l.stats.Requests++
		c.request(now, cd.Addr, cd.ID, Message{Type: MsgAddProvider, Token: cd.token, Records: []Record{l.record}}, forStore, l.id, cd)
	}
	c.maybeFinishStore(now, l)
}

func (c *Core) maybeFinishStore(now time.Time, l *lookup) {
	if l.phase != phaseStore || l.storePending > 0 {
		return
	}
	var err error
	if l.stats.Stored == 0 { // keeping it ourselves alone helps nobody
		err = ErrNotStored
	}
	c.finish(now, l, err)
}

func (c *Core) bootstrapAnswered(now time.Time, l *lookup) {
	if l.phase != phasePing {
		return
	}
	if l.pingsPending--; l.pingsPending > 0 {
		return
	}
	if c.table.Len() == 0 {
		c.finish(now, l, ErrNoContacts)
		return
	}
	c.seedLookup(now, l)
}
