package ipv8

import (
	"net/netip"
	"time"
)

// rateTable is a bounded set of token buckets keyed by source address.
// Not safe for concurrent use; the Endpoint guards it.
type rateTable struct {
	rate, burst float64
	max         int
	buckets     map[netip.AddrPort]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateTable(rate, burst float64, max int) *rateTable {
	return &rateTable{rate: rate, burst: burst, max: max, buckets: make(map[netip.AddrPort]*bucket)}
}

// allow takes one token from src's bucket and reports whether there was
// one.
func (t *rateTable) allow(src netip.AddrPort, now time.Time) bool {
	b, ok := t.buckets[src]
	if !ok {
		if len(t.buckets) >= t.max {
			for k := range t.buckets { // map order: an arbitrary victim
				delete(t.buckets, k)
				break
			}
		}
		b = &bucket{tokens: t.burst, last: now}
		t.buckets[src] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(t.burst, b.tokens+d.Seconds()*t.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune forgets buckets that have refilled completely: they hold no
// information a fresh bucket would not.
func (t *rateTable) prune(now time.Time) {
	for k, b := range t.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*t.rate >= t.burst {
			delete(t.buckets, k)
		}
	}
}
