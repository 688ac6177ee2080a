package dht

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func randKey(rng *rand.Rand) Key {
	var k Key
	for i := range k {
		k[i] = byte(rng.Uint32())
	}
	return k
}

// nearKey returns a random key sharing the first cpl bits with base.
func nearKey(rng *rand.Rand, base Key, cpl int) Key {
	if cpl >= 256 {
		return base
	}
	return randomKeyInBucket(rng, base, cpl)
}

func testAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)}), uint16(1000+i%50000))
}

// TestClosestMatchesBruteForce compares table.closest with a sort of every
// live entry over many random tables and targets.
func TestClosestMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		self := identity.PeerID(randKey(rng))
		k := 1 + rng.IntN(20)
		tb := newTable(self, k, 2, time.Minute, t0)
		nodes := rng.IntN(600)
		for i := range nodes {
			var id Key
			if rng.IntN(2) == 0 {
				id = nearKey(rng, self, rng.IntN(24)) // fill deep buckets too
			} else {
				id = randKey(rng)
			}
			tb.seen(Contact{ID: identity.PeerID(id), Addr: testAddr(i)}, t0)
		}
		var all []Contact
		for _, b := range tb.buckets {
			for _, e := range b.entries {
				all = append(all, e.Contact)
			}
		}
		if len(all) != tb.Len() {
			t.Fatalf("round %d: table holds %d entries, Len says %d", round, len(all), tb.Len())
		}
		for q := range 20 {
			var target Key
			switch q % 4 {
			case 0:
				target = randKey(rng)
			case 1:
				target = self
			case 2:
				target = nearKey(rng, self, rng.IntN(30))
			default:
				if len(all) > 0 {
					target = all[rng.IntN(len(all))].ID
				}
			}
			n := 1 + rng.IntN(30)
			want := slices.Clone(all)
			slices.SortFunc(want, func(a, b Contact) int { return cmpDist(target, a.ID, b.ID) })
			want = want[:min(n, len(want))]
			got := tb.closest(nil, target, n)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d query %d (n=%d, %d entries): closest differs from brute force\n got %v\nwant %v", round, q, n, len(all), ids(got), ids(want))
			}
		}
	}
}

func ids(cs []Contact) []string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.ID.Short()
	}
	return s
}

func TestRandomKeyInBucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		self := randKey(rng)
		i := rng.IntN(256)
		k := randomKeyInBucket(rng, self, i)
		if got := commonPrefixLen(self, k); got != i {
			t.Fatalf("randomKeyInBucket(%d) gave a key with common prefix %d", i, got)
		}
	}
}

func TestTableReplacement(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	self := identity.PeerID(randKey(rng))
	tb := newTable(self, 3, 2, time.Minute, t0)
	var ids []identity.PeerID
	for i := range 5 {
		id := identity.PeerID(nearKey(rng, self, 0)) // all in bucket 0
		ids = append(ids, id)
		tb.seen(Contact{ID: id, Addr: testAddr(i)}, t0)
	}
	if tb.Len() != 3 {
		t.Fatalf("bucket of k=3 holds %d entries after 5 inserts", tb.Len())
	}
	// A newcomer to a full bucket whose head is stale asks for a ping.
	later := t0.Add(2 * time.Minute)
	newcomer := identity.PeerID(nearKey(rng, self, 0))
	ping, ok := tb.seen(Contact{ID: newcomer, Addr: testAddr(9)}, later)
	if !ok || ping.ID != ids[0] {
		t.Fatalf("full bucket with stale head: ping=%v ok=%v, want a ping to %s", ping.ID.Short(), ok, ids[0].Short())
	}
	// One failure keeps the head; the second replaces it by the newest cached.
	if tb.failed(ids[0], later) {
		t.Fatalf("entry removed after one failure, maxFailures is 2")
	}
	if !tb.failed(ids[0], later) {
		t.Fatalf("entry kept after two failures")
	}
	if tb.contains(ids[0]) || !tb.contains(newcomer) {
		t.Fatalf("after replacement: old head present=%v, newcomer present=%v; want false, true", tb.contains(ids[0]), tb.contains(newcomer))
	}
	if tb.Len() != 3 {
		t.Fatalf("Len after replacement = %d, want 3", tb.Len())
	}
	// A node heard from again moves to the tail and is not pinged.
	tb.seen(Contact{ID: ids[1], Addr: testAddr(1)}, later)
	if b := &tb.buckets[0]; b.entries[len(b.entries)-1].ID != ids[1] {
		t.Fatalf("refreshed entry not at the tail of its bucket")
	}
	// Self is never inserted.
	tb.seen(Contact{ID: self}, later)
	if tb.contains(self) {
		t.Fatalf("table contains self")
	}
}

func BenchmarkClosest(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	self := identity.PeerID(randKey(rng))
	tb := newTable(self, 20, 2, time.Minute, t0)
	for i := range 5000 {
		tb.seen(Contact{ID: identity.PeerID(randKey(rng)), Addr: testAddr(i)}, t0)
	}
	targets := make([]Key, 64)
	for i := range targets {
		targets[i] = randKey(rng)
	}
	dst := make([]Contact, 0, 20)
	b.ReportAllocs()
	b.SetBytes(32)
	for i := 0; b.Loop(); i++ {
		dst = tb.closest(dst[:0], targets[i%len(targets)], 20)
	}
}

// TestClosestAllocs: closest reuses its scratch space; with room in dst it
// allocates nothing.
func TestClosestAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	self := identity.PeerID(randKey(rng))
	tb := newTable(self, 20, 2, time.Minute, t0)
	for i := range 2000 {
		tb.seen(Contact{ID: identity.PeerID(randKey(rng)), Addr: testAddr(i)}, t0)
	}
	dst := make([]Contact, 0, 20)
	tb.closest(dst, randKey(rng), 20) // grow the scratch once
	target := randKey(rng)
	if n := testing.AllocsPerRun(100, func() { dst = tb.closest(dst[:0], target, 20) }); n != 0 {
		t.Fatalf("closest allocates %v times per call, want 0", n)
	}
}
