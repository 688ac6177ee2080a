package swarm

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Super-seeding: a seeder (a source holding every chunk) sends each chunk
// to one peer only, as far as it can, and lets the peers trade the rest
// among themselves; on a fleet with a slow publisher uplink, the time to
// deliver is the copies the publisher sends times F/u_s, so every second
// copy costs a whole transfer time.
//
// The rule: when a chunk was already sent (or is being sent) to another
// peer, a peer asking for it is answered "not have" once; its scheduler
// then forgets that the seeder holds the chunk and fetches it from a peer
// that announces it. After SuperSeedHold the seeder announces the chunk to
// that peer again (a have message on its sessions), so a peer whose only
// other source vanished, or never shares, comes back and is served: each
// peer is refused a given chunk at most once. A lone downloader is never
// refused (every chunk's first recipient is itself).
//
// Memory: per item, 4 bytes per chunk (its first recipient) and, per peer
// refused at least once, one bit per chunk. At most maxSuperSeedPeers
// peers are tracked and at most maxSuperSeedRefused of them refused per
// item; beyond either cap requests are served as usual (overflow policy:
// plain seeding), counted by Server.SuperSeedStats. Pending
// re-announcements are timers, at most one per (peer, chunk) refused.
type superSeed struct {
	refusals, overflows *atomic.Int64 // the server's counters

	mu      sync.Mutex
	first   []uint32 // chunk -> token of its first recipient, 0 if none
	tokens  map[identity.PeerID]uint32
	refused map[uint32][]uint64 // token -> bitmap of chunks refused to it
}

const (
	maxSuperSeedPeers   = 1024
	maxSuperSeedRefused = 256
)

func (s *Server) newSuperSeed(chunks int) *superSeed {
	return &superSeed{refusals: &s.ssRefusals, overflows: &s.ssOverflows,
		first: make([]uint32, chunks), tokens: make(map[identity.PeerID]uint32), refused: make(map[uint32][]uint64)}
}

// claim decides whether peer may be sent chunk i now. It returns true and
// records peer as the chunk's recipient if the chunk was not sent to
// anyone else (or peer was refused it before, or canRefuse is false: a
// peer without an open session could not be told about the chunk again);
// false means "refuse once".
func (ss *superSeed) claim(peer identity.PeerID, i int, canRefuse bool) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	tok, ok := ss.tokens[peer]
	if !ok {
		if len(ss.tokens) >= maxSuperSeedPeers {
			ss.overflows.Add(1)
			return true
		}
		tok = uint32(len(ss.tokens) + 1)
		ss.tokens[peer] = tok
	}
	switch f := ss.first[i]; {
	case f == 0:
		ss.first[i] = tok
		return true
	case f == tok || !canRefuse:
		return true
	}
	bm := ss.refused[tok]
	if bm == nil {
		if len(ss.refused) >= maxSuperSeedRefused {
			ss.overflows.Add(1)
			return true
		}
		bm = make([]uint64, (len(ss.first)+63)/64)
		ss.refused[tok] = bm
	}
	if bm[i/64]&(1<<(i%64)) != 0 {
		return true // refused once already: serve
	}
	bm[i/64] |= 1 << (i % 64)
	ss.refusals.Add(1)
	return false
}

// unclaim forgets peer as chunk i's recipient after a failed send, so the
// next peer asking is served.
func (ss *superSeed) unclaim(peer identity.PeerID, i int) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if tok, ok := ss.tokens[peer]; ok && ss.first[i] == tok {
		ss.first[i] = 0
	}
}

// forget releases everything peer was the first recipient of, when its
// last session of the item ends: a peer that left can serve nobody, so the
// next peer asking for those chunks is served, not refused (without this,
// a second downloader arriving after the first had gone waited
// SuperSeedHold for every chunk). Its refusal record goes too.
func (ss *superSeed) forget(peer identity.PeerID) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	tok, ok := ss.tokens[peer]
	if !ok {
		return
	}
	for i, f := range ss.first {
		if f == tok {
			ss.first[i] = 0
		}
	}
	delete(ss.refused, tok)
}

// hasSession reports whether peer has an open session for this item.
func (it *served) hasSession(peer identity.PeerID) bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.peerSessions[peer] > 0
}

// SuperSeedStats returns how many chunk requests super-seeding refused, and
// how many it served as usual because a per-item cap was reached.
func (s *Server) SuperSeedStats() (refused, overflowed int64) {
	return s.ssRefusals.Load(), s.ssOverflows.Load()
}

// reannounce queues a have for chunk i on peer's open sessions of it
// after SuperSeedHold (nothing once the server is closed).
func (s *Server) reannounce(it *served, peer identity.PeerID, i int) {
	time.AfterFunc(s.cfg.SuperSeedHold, func() {
		if s.ctx.Err() != nil {
			return
		}
		it.mu.Lock()
		defer it.mu.Unlock()
		for ss := range it.sessions {
			if ss.peer == peer {
				ss.queueHave(uint32(i))
			}
		}
	})
}
