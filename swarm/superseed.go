package swarm

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Super-seeding: a seeder (a source holding every chunk) sends each chunk
// to one peer only, as far as it can, and lets the peers trade the rest
// among themselves; on a fleet with a slow publisher uplink, the time to
// deliver is the copies the publisher sends times F/u_s, so every second
// copy costs a whole transfer time.
//
// Hostile peers must not be able to turn it against honest ones, so a
// peer is sent away only on the word of peers that proved something, and
// a peer sent away comes back by itself. Downloaders send have messages on
// their sessions with a peer whose hello said "all", so the seeder sees
// which of its chunks arrived and which went on (BEP 16's signal: a piece
// showing up at a second peer):
//
//   - Claim: a chunk is claimed for a peer (its owner) when it is about to
//     be written to it, if that peer has an open session and fewer than
//     maxSuperSeedPending chunks sent and not yet announced and fewer than
//     maxSuperSeedUnpassed announced that no other peer announced; else
//     it is served without a claim (plain seeding, counted as Capped).
//   - Confirm: the owner must announce the chunk within SuperSeedConfirm
//     of the send, else the claim lapses with a strike. A failed send
//     releases the claim.
//   - Passed on: when another peer announces the chunk (and the seeder did
//     not also send it to that peer), the owner is credited; it is trusted
//     while its strikes are under a quarter of its credits.
//   - Refuse: another peer asking for a claimed chunk is answered
//     "elsewhere" (status 6), once per peer and chunk (and again while
//     the chunk is on its way, see onItsWay), if the chunk was passed on, or its owner is here and
//     trusted, or the owner announced it and has no strike (vouched), or
//     it is on its way to an owner with no strike that announced its
//     earlier claims (onItsWay). Else it is served (Unproven): a peer that
//     asks for chunks and never reads nor announces them sends nobody
//     away. A stripe whose data count of chunks are claimed and vouched
//     for sends requests for its other chunks (its parity) away too.
//   - The peer sent away (sched's Elsewhere) fetches the chunk from a peer
//     that announces it, and asks the seeder again after ElsewhereWait
//     (100 ms) if none does or a request there fails; asked again, the
//     seeder serves it (Again). So whatever peers claim, an honest peer
//     waits at most about that long for a chunk.
//   - Hold: SuperSeedHold after a refusal, a claim nobody but its owner
//     announced is released with a strike (the owner did not pass on what
//     it was asked for).
//   - Leave: when a peer's last session of the item ends, its claims are
//     released unless the peer it passed the chunk to is still here, the
//     chunks it passed on count as not passed on, and the peers refused
//     the released chunks are told (a have) at once.
//
// A lone downloader is never refused: nobody vouches for anyone.
//
// Memory: per item, 33 bytes per chunk (a claim and a send count); per
// tracked peer, a small record and, once refused, one bit per chunk. At most maxSuperSeedPeers peers
// are tracked and at most maxSuperSeedRefused of them refused per item;
// beyond either cap requests are served as usual (overflow policy: plain
// seeding), counted in SuperSeedCounters. Timers: one per chunk sent and
// not yet announced (at most maxSuperSeedPending per tracked peer) and one
// per (peer, chunk) refused.
type superSeed struct {
	c       *ssCounters // the server's
	confirm time.Duration
	man     *chunker.Manifest // stripes; nil: every chunk stands alone

	mu     sync.Mutex
	chunks []ssChunk
	sends  []uint8                    // per chunk, the sends decided (saturating): the second and later are counted in ssCounters.repeat
	tokens map[identity.PeerID]uint32 // peer -> token: index in peers, plus 1
	peers  []*ssPeer
	nbm    int // peers with a refused bitmap
}

// ssChunk is one chunk's claim.
type ssChunk struct {
	owner  uint32 // token of its first recipient; 0: unclaimed
	gen    uint32 // counts claims, so that a stale timer finds a newer one
	state  ssState
	passer uint32 // token of the first peer other than the owner to announce it; 0: none
	since  int64  // when it was claimed, Unix nanoseconds
	dup    bool   // the seeder sent it to a peer other than the owner too
}

type ssState uint8

const (
	ssSending ssState = iota + 1 // being written to its owner
	ssSent                       // written; waiting for the owner's have
	ssHeld                       // the owner (or a peer it passed it to) announced it
)

// ssPeer is what super-seeding knows of one peer.
type ssPeer struct {
	id       identity.PeerID
	pending  int           // chunks claimed, sending or sent, not yet announced
	unpassed int           // chunks held, claimed for it, that no other peer announced
	passed   int           // chunks claimed for it that another peer announced
	strikes  int           // claims that lapsed or were not passed on when asked
	refused  []uint64      // chunks it was refused once; nil if none
	nrefused int           // refusals it got
	lat      time.Duration // how long its claims take from claim to its have (moving average; 0: none yet)
	present  bool          // it has an open session (set when it asks or announces, cleared when its last session ends)
}

// trusted reports whether p proved it passes chunks on.
func (p *ssPeer) trusted() bool { return p.passed > 0 && 4*p.strikes < p.passed }

// vouched reports whether others may be sent to claimed chunk c's owner
// for it: another peer announced it, or its owner is here and either
// proved it passes chunks on, or announced this chunk and never failed (a
// new peer: if it does not pass the chunk on, it gets a strike after
// SuperSeedHold). A chunk on its way to an owner that passed nothing on is
// served to whoever asks: a peer that never reads nor announces what it
// asked for sends nobody away. Whatever the owner does, a peer sent away
// asks again after sched's ElsewhereWait if nobody else serves the chunk.
func (ss *superSeed) vouched(c *ssChunk) bool {
	o := ss.peers[c.owner-1]
	return c.passer != 0 || (o.present && (o.trusted() || (c.state == ssHeld && o.strikes == 0)))
}

const (
	maxSuperSeedPeers    = 1024
	maxSuperSeedRefused  = 256
	maxSuperSeedPending  = 16
	maxSuperSeedUnpassed = 64
)

// ssCounters counts super-seeding's decisions over all items.
type ssCounters struct {
	refused, overflowed, capped, lapsed, unpassed, unproven, again atomic.Int64
	claimed, owner, noSession, distinct, early                     atomic.Int64
	repeat                                                         [ssWhys]atomic.Int64
}

// ssWhy is why a chunk was sent, for counting the chunks sent again.
type ssWhy uint8

const (
	whyClaim     ssWhy = iota // claimed for its first recipient (again: an earlier claim was released)
	whyOwner                  // asked again by its owner (its request timed out or was cancelled)
	whyUnproven               // its owner has not proved it holds or passes it on
	whyAgain                  // the peer was refused it before
	whyCapped                 // the peer had too many claims pending or not passed on
	whyOverflow               // a cap on tracked or refused peers
	whyNoSession              // the peer had no session (cannot announce)
	ssWhys
)

// give counts a decision to send chunk i for why (ss.mu held, or ss nil
// for no session).
func (ss *superSeed) give(i int, why ssWhy) {
	n := ss.sends[i]
	if n < 255 {
		ss.sends[i]++
	}
	if n == 0 {
		ss.c.distinct.Add(1)
		return
	}
	ss.c.repeat[why].Add(1)
}

// SuperSeedCounters counts what super-seeding decided.
type SuperSeedCounters struct {
	Refused    int64 // chunk requests answered "not have": the chunk went to another peer
	Early      int64 // of those, refused on arrival (see refuseEarly), never accepted nor queued
	Overflowed int64 // requests served as usual: a per-item cap on tracked or refused peers was reached
	Capped     int64 // requests served without a claim: the peer had too many chunks unannounced or not passed on
	Lapsed     int64 // claims released: the owner did not announce the chunk within SuperSeedConfirm
	Unpassed   int64 // claims released: nobody but the owner announced the chunk within SuperSeedHold of a refusal
	Unproven   int64 // chunks sent to a peer other than their owner: the owner has not proved it holds the chunk or passes chunks on
	Again      int64 // chunks sent to a peer other than their owner: it was refused the chunk before
	Claimed    int64 // claims made (chunks sent to a first recipient, or again after a claim was released)
	Owner      int64 // chunks sent again to their owner, which asked again
	NoSession  int64 // chunks served to a peer without a session (plain seeding)

	// Distinct counts chunks sent at least once; Repeats the decisions to
	// send a chunk sent before, by why: a fleet's extra copies.
	Distinct int64
	Repeats  SuperSeedRepeats
}

// SuperSeedRepeats counts the decisions to send a chunk again, by why.
type SuperSeedRepeats struct {
	Reclaimed int64 // claimed again after an earlier claim lapsed, failed or was released
	Owner     int64 // its owner asked again
	Unproven  int64 // another peer asked while the owner had not proved it holds or passes it on
	Again     int64 // a peer refused it before asked again
	Capped    int64 // the asking peer had too many claims pending or unpassed
	Overflow  int64 // a per-item cap on tracked or refused peers
	NoSession int64 // the asking peer had no session
}

// SuperSeedCounters returns super-seeding's counters.
func (s *Server) SuperSeedCounters() SuperSeedCounters {
	return SuperSeedCounters{
		Refused: s.ss.refused.Load(), Overflowed: s.ss.overflowed.Load(), Capped: s.ss.capped.Load(),
		Lapsed: s.ss.lapsed.Load(), Unpassed: s.ss.unpassed.Load(), Unproven: s.ss.unproven.Load(), Again: s.ss.again.Load(),
		Early: s.ss.early.Load(), Claimed: s.ss.claimed.Load(), Owner: s.ss.owner.Load(), NoSession: s.ss.noSession.Load(),
		Distinct: s.ss.distinct.Load(),
		Repeats: SuperSeedRepeats{
			Reclaimed: s.ss.repeat[whyClaim].Load(), Owner: s.ss.repeat[whyOwner].Load(), Unproven: s.ss.repeat[whyUnproven].Load(),
			Again: s.ss.repeat[whyAgain].Load(), Capped: s.ss.repeat[whyCapped].Load(), Overflow: s.ss.repeat[whyOverflow].Load(),
			NoSession: s.ss.repeat[whyNoSession].Load(),
		},
	}
}

func (s *Server) newSuperSeed(chunks int, man *chunker.Manifest) *superSeed {
	return &superSeed{c: &s.ss, confirm: s.cfg.SuperSeedConfirm, man: man, chunks: make([]ssChunk, chunks), sends: make([]uint8, chunks), tokens: make(map[identity.PeerID]uint32)}
}

// ssDecision is what claim decided.
type ssDecision uint8

const (
	ssServe   ssDecision = iota + 1 // send it; nothing to report
	ssClaimed                       // send it; report with sent or failed
	ssRefuse                        // answer "not have"; start the hold
)

// claim decides whether peer may be sent chunk i now (hasSession: peer has
// an open session for the item). For ssClaimed and ssRefuse it also
// returns the claim's generation, for sent, failed and held.
func (ss *superSeed) claim(peer identity.PeerID, i int, hasSession bool) (ssDecision, uint32) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !hasSession {
		ss.c.noSession.Add(1)
		ss.give(i, whyNoSession)
		return ssServe, 0 // cannot announce what it got, nor be told again
	}
	tok, p := ss.peerLocked(peer)
	if p == nil {
		ss.c.overflowed.Add(1)
		ss.give(i, whyOverflow)
		return ssServe, 0
	}
	p.present = true
	c := &ss.chunks[i]
	switch {
	case c.owner == 0 && ss.stripeGiven(i):
		return ss.refuseLocked(p, i)
	case c.owner == 0:
		if p.pending >= maxSuperSeedPending || p.unpassed >= maxSuperSeedUnpassed {
			ss.c.capped.Add(1)
			ss.give(i, whyCapped)
			return ssServe, 0
		}
		c.gen++
		c.owner, c.state, c.passer, c.dup = tok, ssSending, 0, false
		c.since = time.Now().UnixNano()
		p.pending++
		ss.c.claimed.Add(1)
		ss.give(i, whyClaim)
		return ssClaimed, c.gen
	case c.owner == tok:
		ss.c.owner.Add(1)
		ss.give(i, whyOwner)
		return ssServe, 0
	case !ss.vouched(c) && !(ss.onItsWay(c) && ss.peers[c.owner-1].strikes == 0):
		c.dup = true
		ss.c.unproven.Add(1)
		ss.give(i, whyUnproven)
		return ssServe, 0
	}
	return ss.refuseLocked(p, i)
}

// refuseEarly refuses peer chunk i when its request arrives, if claim
// would refuse it at its turn because another peer's claim on the chunk
// stands: a request waiting for its turn behind the chunks being written
// to the peer holds one of the peer's request slots for nothing, and on a
// fleet the publisher then runs short of requests it can serve. It
// returns false (decide at the turn, as usual) in every other case.
func (ss *superSeed) refuseEarly(peer identity.PeerID, i int, hasSession bool) (bool, uint32) {
	if !hasSession {
		return false, 0
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	tok, ok := ss.tokens[peer]
	if !ok {
		return false, 0
	}
	p, c := ss.peers[tok-1], &ss.chunks[i]
	switch {
	case c.owner == 0 || c.owner == tok:
		return false, 0
	case !ss.vouched(c) && !(ss.onItsWay(c) && ss.peers[c.owner-1].strikes == 0):
		return false, 0
	case p.refused == nil && ss.nbm >= maxSuperSeedRefused:
		return false, 0
	case p.refused != nil && p.refused[i/64]&(1<<(i%64)) != 0 && !ss.onItsWay(c):
		return false, 0
	}
	dec, gen := ss.refuseLocked(p, i)
	if dec != ssRefuse {
		return false, 0
	}
	ss.c.early.Add(1)
	return true, gen
}

// refuseLocked refuses p chunk i, unless it was refused it before or the
// cap on refused peers is reached (then it is served, and counted).
func (ss *superSeed) refuseLocked(p *ssPeer, i int) (ssDecision, uint32) {
	c := &ss.chunks[i]
	if p.refused == nil {
		if ss.nbm >= maxSuperSeedRefused {
			ss.c.overflowed.Add(1)
			c.dup = c.owner != 0
			ss.give(i, whyOverflow)
			return ssServe, 0
		}
		p.refused = make([]uint64, (len(ss.chunks)+63)/64)
		ss.nbm++
	}
	if p.refused[i/64]&(1<<(i%64)) != 0 {
		if ss.onItsWay(c) {
			p.nrefused++
			ss.c.refused.Add(1)
			return ssRefuse, c.gen
		}
		if c.owner != 0 {
			c.dup = true
		}
		ss.c.again.Add(1)
		ss.give(i, whyAgain)
		return ssServe, 0 // refused once already
	}
	p.refused[i/64] |= 1 << (i % 64)
	p.nrefused++
	ss.c.refused.Add(1)
	return ssRefuse, c.gen
}

// onItsWay reports whether claimed chunk c is still on its way to an owner
// that is here and whose claims arrive: claimed less than twice the
// owner's usual time to announce a claim ago (at most SuperSeedConfirm
// and maxOnItsWay).
// A peer refused it already is refused again meanwhile (it asks again
// every ElsewhereWait): on a slow link the chunk reaches the owner, and
// the owner's have reaches the refused peer, after more than that wait.
// An owner that never announced its own claims has no usual time.
func (ss *superSeed) onItsWay(c *ssChunk) bool {
	if c.owner == 0 || (c.state != ssSending && c.state != ssSent) {
		return false
	}
	o := ss.peers[c.owner-1]
	if !o.present || o.lat == 0 {
		return false
	}
	return time.Duration(time.Now().UnixNano()-c.since) < min(2*o.lat, ss.confirm, maxOnItsWay)
}

// maxOnItsWay bounds how long a peer is refused a chunk on its way to
// another: an owner that announces its claims slowly on purpose (vouched
// for by accomplices) holds honest peers back at most this long, not
// SuperSeedConfirm. On links where a chunk takes longer to arrive, the
// seeder sends some twice.
const maxOnItsWay = 2 * time.Second

// stripeGiven reports whether chunk i's stripe has as many chunks given to
// peers as it has data chunks, each to a trusted peer or passed on: the
// peers hold enough of it to rebuild any of its chunks, so a peer asking
// for another one of it (a parity chunk, say) is sent to them.
func (ss *superSeed) stripeGiven(i int) bool {
	if ss.man == nil {
		return false
	}
	st, _ := ss.man.StripeOf(i)
	start, k := ss.man.StripeStart(st), ss.man.StripeDataCount(st)
	n := 0
	for j := start; j < start+ss.man.StripeLen(st); j++ {
		if c := &ss.chunks[j]; c.owner != 0 && ss.vouched(c) {
			n++
		}
	}
	return n >= k
}

// peerLocked returns peer's token and record, creating them; nil past
// maxSuperSeedPeers.
func (ss *superSeed) peerLocked(peer identity.PeerID) (uint32, *ssPeer) {
	if tok, ok := ss.tokens[peer]; ok {
		return tok, ss.peers[tok-1]
	}
	if len(ss.peers) >= maxSuperSeedPeers {
		return 0, nil
	}
	p := &ssPeer{id: peer}
	ss.peers = append(ss.peers, p)
	tok := uint32(len(ss.peers))
	ss.tokens[peer] = tok
	return tok, p
}

// sent records that claim gen of chunk i was written to its owner: the
// owner now has SuperSeedConfirm to announce it (see lapse).
func (ss *superSeed) sent(i int, gen uint32) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if c := &ss.chunks[i]; c.gen == gen && c.state == ssSending {
		c.state = ssSent
	}
}

// failed releases claim gen of chunk i after its send failed, and returns
// the peers to tell about the chunk again.
func (ss *superSeed) failed(i int, gen uint32) []identity.PeerID {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if c := &ss.chunks[i]; c.gen == gen && c.state == ssSending {
		return ss.releaseLocked(i, nil)
	}
	return nil
}

// lapse releases claim gen of chunk i if its owner has not announced it
// (SuperSeedConfirm after it was sent), strikes the owner, and returns the
// peers to tell about the chunk again.
func (ss *superSeed) lapse(i int, gen uint32) []identity.PeerID {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	c := &ss.chunks[i]
	if c.gen != gen || c.state != ssSent {
		return nil
	}
	ss.peers[c.owner-1].strikes++
	ss.c.lapsed.Add(1)
	return ss.releaseLocked(i, nil)
}

// holdOver runs SuperSeedHold after peer was refused chunk i under claim
// gen: if the claim stands, is held, and nobody but its owner announced the
// chunk, the owner did not pass it on: it gets a strike and the claim is
// released. It returns the peers to tell about the chunk again (none if the
// claim stands: a refused downloader asks again by itself when no other
// peer serves the chunk, see sched's Elsewhere).
func (ss *superSeed) holdOver(i int, gen uint32) []identity.PeerID {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	c := &ss.chunks[i]
	if c.owner == 0 || c.gen != gen || c.state != ssHeld || c.passer != 0 {
		return nil
	}
	ss.peers[c.owner-1].strikes++
	ss.c.unpassed.Add(1)
	return ss.releaseLocked(i, nil)
}

// releaseLocked forgets chunk i's claim and appends to tell the peers that
// were refused it (they are served on their next request).
func (ss *superSeed) releaseLocked(i int, tell []identity.PeerID) []identity.PeerID {
	c := &ss.chunks[i]
	if c.owner != 0 {
		o := ss.peers[c.owner-1]
		switch {
		case c.state == ssSending || c.state == ssSent:
			o.pending--
		case c.state == ssHeld && c.passer == 0:
			o.unpassed--
		}
	}
	*c = ssChunk{gen: c.gen}
	for _, p := range ss.peers {
		if p.refused != nil && p.refused[i/64]&(1<<(i%64)) != 0 {
			tell = append(tell, p.id)
		}
	}
	return tell
}

// held records the chunks peer announced on its session: its own claims
// are confirmed, and another peer's are credited as passed on.
func (ss *superSeed) held(peer identity.PeerID, idx []uint32) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	tok, p := ss.peerLocked(peer)
	if p == nil {
		return // past the tracked-peer cap: its word counts for nothing
	}
	p.present = true
	for _, i := range idx {
		c := &ss.chunks[i]
		if c.owner == 0 {
			continue
		}
		o := ss.peers[c.owner-1]
		if c.owner == tok {
			if c.state == ssSending || c.state == ssSent {
				if d := time.Duration(time.Now().UnixNano() - c.since); o.lat == 0 {
					o.lat = d
				} else {
					o.lat = (3*o.lat + d) / 4
				}
				o.pending--
				c.state = ssHeld
				if c.passer == 0 {
					o.unpassed++
				}
			}
			continue
		}
		if c.passer != 0 || c.dup {
			continue // credited already, or the peer may have it from us
		}
		c.passer = tok
		o.passed++
		switch c.state {
		case ssHeld:
			o.unpassed--
		case ssSending, ssSent: // it reached a peer through the owner
			o.pending--
			c.state = ssHeld
		}
	}
}

// forget runs when peer's last session of the item ends: a peer that left
// serves nobody. Its claims are released unless the peer that passed the
// chunk on is still here (so the next peer asking is served, not sent to
// a peer that left); the chunks it passed on count as not passed on (and
// are released if their owner left too); its refusal record goes. It
// returns the peers to tell about each released chunk again.
func (ss *superSeed) forget(peer identity.PeerID) map[identity.PeerID][]uint32 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	tok, ok := ss.tokens[peer]
	if !ok {
		return nil
	}
	p := ss.peers[tok-1]
	p.present = false
	if p.refused != nil {
		p.refused = nil
		ss.nbm--
	}
	var tell map[identity.PeerID][]uint32
	var buf []identity.PeerID
	for i := range ss.chunks {
		c := &ss.chunks[i]
		switch {
		case c.owner == 0:
			continue
		case c.owner == tok && c.passer != 0 && ss.peers[c.passer-1].present:
			continue
		case c.passer == tok && ss.peers[c.owner-1].present:
			c.passer = 0
			if c.state == ssHeld {
				ss.peers[c.owner-1].unpassed++
			}
			continue
		case c.owner != tok && c.passer != tok:
			continue
		}
		buf = ss.releaseLocked(i, buf[:0])
		for _, q := range buf {
			if tell == nil {
				tell = make(map[identity.PeerID][]uint32)
			}
			tell[q] = append(tell[q], uint32(i))
		}
	}
	return tell
}

// hasSession reports whether peer has an open session for this item.
func (it *served) hasSession(peer identity.PeerID) bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.peerSessions[peer] > 0
}

// announce queues a have for chunk i on the open sessions of peers.
func (it *served) announce(peers []identity.PeerID, i int) {
	if len(peers) == 0 {
		return
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	for ss := range it.sessions {
		for _, p := range peers {
			if ss.peer == p {
				ss.queueHave(uint32(i))
			}
		}
	}
}

// announceMany queues haves for the chunks listed per peer.
func (it *served) announceMany(tell map[identity.PeerID][]uint32) {
	if len(tell) == 0 {
		return
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	for ss := range it.sessions {
		for _, i := range tell[ss.peer] {
			ss.queueHave(i)
		}
	}
}

// confirmLater starts SuperSeedConfirm for claim gen of chunk i, just
// written to its owner (nothing once the server is closed).
func (s *Server) confirmLater(it *served, i int, gen uint32) {
	time.AfterFunc(s.cfg.SuperSeedConfirm, func() {
		if s.ctx.Err() == nil {
			it.announce(it.super.lapse(i, gen), i)
		}
	})
}

// holdLater starts SuperSeedHold after a peer was refused chunk i under
// claim gen (nothing once the server is closed).
func (s *Server) holdLater(it *served, i int, gen uint32) {
	time.AfterFunc(s.cfg.SuperSeedHold, func() {
		if s.ctx.Err() == nil {
			it.announce(it.super.holdOver(i, gen), i)
		}
	})
}
