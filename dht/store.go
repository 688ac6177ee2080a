package dht

import (
	"slices"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// store keeps provider records for others, bounded in total, per provider
// and per content ID. Records of one content ID keep their arrival order.
type store struct {
	byKey      map[Key][]*Record
	byProvider map[identity.PeerID]int
	total      int

	max, maxPerProvider, maxPerKey int
}

func newStore(max, perProvider, perKey int) *store {
	return &store{byKey: make(map[Key][]*Record), byProvider: make(map[identity.PeerID]int),
		max: max, maxPerProvider: perProvider, maxPerKey: perKey}
}

// put stores r (already verified) or replaces the same provider's record
// for the same content. It returns AckStored or AckFull.
func (s *store) put(r Record) uint8 {
	pid := r.Key.PeerID()
	recs := s.byKey[r.Content]
	for i, old := range recs {
		if old.Key == r.Key {
			if r.Expires >= old.Expires {
				recs[i] = &r
			}
			return AckStored
		}
	}
	if s.total >= s.max || s.byProvider[pid] >= s.maxPerProvider || len(recs) >= s.maxPerKey {
		return AckFull
	}
	s.byKey[r.Content] = append(recs, &r)
	s.byProvider[pid]++
	s.total++
	return AckStored
}

// get returns the unexpired records for key, in arrival order. The records
// are shared; callers must not modify them.
func (s *store) get(key Key, now time.Time) []*Record {
	var out []*Record
	for _, r := range s.byKey[key] {
		if r.Expires > now.Unix() {
			out = append(out, r)
		}
	}
	return out
}

// expire drops records expired at now.
func (s *store) expire(now time.Time) {
	t := now.Unix()
	for key, recs := range s.byKey {
		kept := slices.DeleteFunc(recs, func(r *Record) bool {
			if r.Expires > t {
				return false
			}
			pid := r.Key.PeerID()
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
