package dht

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// store keeps provider records for others, bounded in total, per provider,
// per content ID, and per content ID and source group (the network the
// storing request came from, see sourceGroup): one host's throwaway
// identities cannot fill a content ID's quota.
type store struct {
	byKey      map[Key][]*stored
	byProvider map[identity.PeerID]int
	total      int

	max, maxPerProvider, maxPerKey, maxPerGroup int
}

// stored is a record with the group of the address that stored it (a
// round trip proved that address: add provider needs a token made for it).
type stored struct {
	rec   *Record
	group netip.Prefix
}

func newStore(max, perProvider, perKey, perGroup int) *store {
	return &store{byKey: make(map[Key][]*stored), byProvider: make(map[identity.PeerID]int),
		max: max, maxPerProvider: perProvider, maxPerKey: perKey, maxPerGroup: perGroup}
}

// sourceGroup is the network an address belongs to for diversity: the /24
// of a public IPv4 address, the /48 of a public IPv6 address, and the
// address itself on loopback, private and link-local networks (where each
// host is its own operator).
func sourceGroup(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := a.BitLen()
	if !a.IsLoopback() && !a.IsPrivate() && !a.IsLinkLocalUnicast() {
		if a.Is4() {
			bits = 24
		} else {
			bits = 48
		}
	}
	p, _ := a.Prefix(bits)
	return p
}

// put stores r (already verified), received from an address in group, or
// replaces the same provider's record for the same content. It returns
// AckStored or AckFull.
func (s *store) put(r Record, group netip.Prefix) uint8 {
	pid := r.Key.PeerID()
	recs := s.byKey[r.Content]
	inGroup := 0
	for _, old := range recs {
		if old.rec.Key == r.Key {
			if r.Expires >= old.rec.Expires {
				old.rec, old.group = &r, group
			}
			return AckStored
		}
		if old.group == group {
			inGroup++
		}
	}
	if s.total >= s.max || s.byProvider[pid] >= s.maxPerProvider || len(recs) >= s.maxPerKey || inGroup >= s.maxPerGroup {
		return AckFull
	}
	s.byKey[r.Content] = append(recs, &stored{rec: &r, group: group})
	s.byProvider[pid]++
	s.total++
	return AckStored
}

// get returns the unexpired records for key, in arrival order. The records
// are shared; callers must not modify them.
func (s *store) get(key Key, now time.Time) []*Record {
	var out []*Record
	for _, st := range s.byKey[key] {
		if st.rec.Expires > now.Unix() {
			out = append(out, st.rec)
		}
	}
	return out
}

// sample returns the unexpired records for key in the order a reply should
// carry them, so that no one group crowds out the others: groups in random
// order, one record from each in turn (random within a group), until all
// are listed. A reply cut short by size still holds records from as many
// groups as fit.
func (s *store) sample(key Key, now time.Time, rng *rand.Rand) []*Record {
	var groups [][]*Record
	index := make(map[netip.Prefix]int)
	for _, st := range s.byKey[key] {
		if st.rec.Expires <= now.Unix() {
			continue
		}
		i, ok := index[st.group]
		if !ok {
			i = len(groups)
			index[st.group] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], st.rec)
	}
	rng.Shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })
	for _, g := range groups {
		rng.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
	}
	var out []*Record
	for round := 0; ; round++ {
		added := false
		for _, g := range groups {
			if round < len(g) {
				out = append(out, g[round])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// expire drops records expired at now.
func (s *store) expire(now time.Time) {
	t := now.Unix()
	for key, recs := range s.byKey {
		kept := slices.DeleteFunc(recs, func(st *stored) bool {
			if st.rec.Expires > t {
				return false
			}
			pid := st.rec.Key.PeerID()
			if s.byProvider[pid]--; s.byProvider[pid] <= 0 {
				delete(s.byProvider, pid)
			}
			s.total--
			return true
		})
		if len(kept) == 0 {
			delete(s.byKey, key)
		} else {
			s.byKey[key] = kept
		}
	}
}

// Len returns the number of stored records.
func (s *store) Len() int { return s.total }

// ownGroup is the group of our own records: the zero prefix, apart from
// every address.
var ownGroup netip.Prefix
