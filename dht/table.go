package dht

import (
	"bytes"
	"net/netip"
	"slices"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Contact is a node as the DHT knows it: its Kademlia ID (the PeerID of its
// public key) and the address it was last heard from.
type Contact struct {
	ID   identity.PeerID
	Addr netip.AddrPort
}

// entry is a routing-table slot.
type entry struct {
	Contact
	lastSeen time.Time
	failures int  // consecutive unanswered requests
	pinging  bool // a liveness ping is in flight
}

// bucket holds up to k live entries, least recently seen first, and a
// replacement cache of up to k candidates, most recently seen last.
type bucket struct {
	entries     []*entry
	cache       []Contact
	lastChanged time.Time // last insertion or lookup through this bucket
}

// table is the Kademlia routing table: 256 buckets indexed by the length of
// the prefix an ID shares with self.
//
// Rules:
//   - A node heard from is moved to the tail of its bucket (most recently
//     seen). A new node goes to the tail when the bucket has room; otherwise
//     it goes to the replacement cache (newest kept, oldest dropped) and the
//     head of the bucket, if not heard from for pingAfter, is due a ping.
//   - A node that fails maxFailures requests in a row is removed and the
//     newest cached candidate takes its place.
//
// table is not safe for concurrent use; the Core owns it.
type table struct {
	self        identity.PeerID
	k           int
	maxFailures int
	pingAfter   time.Duration
	buckets     [256]bucket
	n           int
	scratch     []distRef // reused by closest
}

func newTable(self identity.PeerID, k, maxFailures int, pingAfter time.Duration, now time.Time) *table {
	t := &table{self: self, k: k, maxFailures: maxFailures, pingAfter: pingAfter}
	for i := range t.buckets {
		t.buckets[i].lastChanged = now
	}
	return t
}

// Len returns the number of live entries.
func (t *table) Len() int { return t.n }

func (t *table) find(id identity.PeerID) (b *bucket, i int) {
	cpl := commonPrefixLen(t.self, id)
	if cpl == 256 {
		return nil, -1
	}
	b = &t.buckets[cpl]
	for i, e := range b.entries {
		if e.ID == id {
			return b, i
		}
	}
	return b, -1
}

// seen records that c was heard from at now. It returns a contact to ping
// (ok true) when c could not be inserted because its bucket is full and the
// bucket's least recently seen entry is due a liveness check.
func (t *table) seen(c Contact, now time.Time) (ping Contact, ok bool) {
	b, i := t.find(c.ID)
	if b == nil {
		return Contact{}, false
	}
	if i >= 0 {
		e := b.entries[i]
		e.Addr, e.lastSeen, e.failures, e.pinging = c.Addr, now, 0, false
		b.entries = append(slices.Delete(b.entries, i, i+1), e)
		return Contact{}, false
	}
	if len(b.entries) < t.k {
		b.entries = append(b.entries, &entry{Contact: c, lastSeen: now})
		b.lastChanged = now
		t.n++
		return Contact{}, false
	}
	// Full: remember c as a replacement, and check the oldest entry.
	if j := slices.IndexFunc(b.cache, func(x Contact) bool { return x.ID == c.ID }); j >= 0 {
		b.cache = slices.Delete(b.cache, j, j+1)
	}
	if len(b.cache) >= t.k {
		b.cache = slices.Delete(b.cache, 0, 1)
	}
	b.cache = append(b.cache, c)
	head := b.entries[0]
	if !head.pinging && now.Sub(head.lastSeen) >= t.pingAfter {
		head.pinging = true
		return head.Contact, true
	}
	return Contact{}, false
}

// failed records an unanswered request to id. After maxFailures in a row the
// entry is removed and replaced by the newest cached candidate. It reports
// whether the entry was removed.
func (t *table) failed(id identity.PeerID, now time.Time) bool {
	b, i := t.find(id)
	if b == nil || i < 0 {
		return false
	}
	e := b.entries[i]
	e.failures++
	e.pinging = false
	if e.failures < t.maxFailures {
		return false
	}
	b.entries = slices.Delete(b.entries, i, i+1)
	t.n--
	if n := len(b.cache); n > 0 {
		c := b.cache[n-1]
		b.cache = b.cache[:n-1]
		// A cached candidate has not been heard from since it was cached;
		// its lastSeen is left at the zero time so it is pinged first.
		b.entries = append([]*entry{{Contact: c}}, b.entries...)
		t.n++
	}
	b.lastChanged = now
	return true
}

// addrOf returns the address of id's live entry.
func (t *table) addrOf(id identity.PeerID) (netip.AddrPort, bool) {
	b, i := t.find(id)
	if b == nil || i < 0 {
		return netip.AddrPort{}, false
	}
	return b.entries[i].Addr, true
}

// knows reports whether c is a live entry or a replacement candidate at
// the same address: a node that proved that address already.
func (t *table) knows(c Contact) bool {
	b, i := t.find(c.ID)
	switch {
	case b == nil:
		return false
	case i >= 0:
		return b.entries[i].Addr == c.Addr
	}
	return slices.Contains(b.cache, c)
}

// wantsNewcomer reports whether a new node id, once heard from, would
// change the table: its bucket has room, or the bucket's least recently
// seen entry is due a liveness check (see seen).
func (t *table) wantsNewcomer(id identity.PeerID, now time.Time) bool {
	b, _ := t.find(id)
	if b == nil {
		return false
	}
	if len(b.entries) < t.k {
		return true
	}
	head := b.entries[0]
	return !head.pinging && now.Sub(head.lastSeen) >= t.pingAfter
}

// contains reports whether id is a live entry.
func (t *table) contains(id identity.PeerID) bool {
	b, i := t.find(id)
	return b != nil && i >= 0
}

// closest appends to dst the n entries closest to target by XOR distance,
// closest first.
//
// Seen from self, let i be the bucket target falls in. Entries of bucket i
// share target's bit i and are closer than any other; entries of buckets
// j > i all differ from target first at bit i, so they come next (sorted
// together); entries of buckets j < i differ first at bit j, so they follow
// in order i-1, i-2, ..., 0. Each group is searched only when it is
// reached, for just as many entries as are still wanted.
func (t *table) closest(dst []Contact, target Key, n int) []Contact {
	want := len(dst) + n
	// group appends the closest entries of buckets [from, to) to dst, up to
	// want in all, keeping a sorted top list of the needed size (most
	// entries are rejected by one comparison with its last element).
	group := func(from, to int) {
		need := want - len(dst)
		s := t.scratch[:0]
		for j := from; j < to; j++ {
			for k, e := range t.buckets[j].entries {
				d := xor(target, e.ID)
				if len(s) == need && bytes.Compare(d[:], s[need-1].d[:]) >= 0 {
					continue
				}
				at, _ := slices.BinarySearchFunc(s, d, func(r distRef, d Key) int { return bytes.Compare(r.d[:], d[:]) })
				if len(s) < need {
					s = append(s, distRef{})
				}
				copy(s[at+1:], s[at:len(s)-1])
				s[at] = distRef{d: d, bucket: uint8(j), idx: uint8(k)}
			}
		}
		for _, r := range s {
			dst = append(dst, t.buckets[r.bucket].entries[r.idx].Contact)
		}
		t.scratch = s[:0]
	}
	i := commonPrefixLen(t.self, target)
	if i < 256 {
		group(i, i+1)
		if len(dst) < want {
			group(i+1, 256)
		}
	}
	for j := min(i, 256) - 1; j >= 0 && len(dst) < want; j-- {
		group(j, j+1)
	}
	return dst
}

// distRef is an entry (by bucket and position, not pointer, so sorting
// needs no write barriers) with its distance to a lookup target.
type distRef struct {
	d      Key
	bucket uint8
	idx    uint8 // k <= 64
}

// staleBuckets appends to dst the indexes of buckets not changed or looked
// up through since before cutoff, up to the deepest non-empty bucket (deeper
// buckets cannot hold anyone yet).
func (t *table) staleBuckets(dst []int, cutoff time.Time) []int {
	deepest := -1
	for i := 255; i >= 0; i-- {
		if len(t.buckets[i].entries) > 0 {
			deepest = i
			break
		}
	}
	for i := 0; i <= deepest; i++ {
		if t.buckets[i].lastChanged.Before(cutoff) {
			dst = append(dst, i)
		}
	}
	return dst
}

// touch marks the bucket that target falls in as refreshed.
func (t *table) touch(target Key, now time.Time) {
	if i := commonPrefixLen(t.self, target); i < 256 {
		t.buckets[i].lastChanged = now
	}
}
