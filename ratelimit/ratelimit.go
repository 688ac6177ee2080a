// Package ratelimit is shoal's one token bucket: a bounded table of buckets
// keyed by whatever a caller limits (a source address, a peer ID). The DHT
// and the IPv8 endpoint both limit floods of requests with it.
//
// It owns no goroutine and reads no clock: callers pass now. A Table is not
// safe for concurrent use; its owner (one goroutine, or a mutex the owner
// holds) serialises calls.
//
// # Overflow policy
//
// The table holds at most Max keys, so a flood from spoofed addresses cannot
// grow it. When a new key arrives at a full table, the table first forgets
// every key whose bucket has refilled (it holds nothing a fresh bucket would
// not). If that frees less than an eighth of the table, it evicts the keys
// used least recently until an eighth is free (deterministically: the same
// calls give the same table, which the simulators rely on). Evicted keys
// start again with a full bucket: under a spoofed flood the limiter fails
// open for the evicted senders rather than locking real senders out, and
// each sweep costs O(Max log Max) once per Max/8 new keys. Evictions are
// counted.
package ratelimit

import (
	"slices"
	"time"
)

// Table is a bounded set of token buckets keyed by K.
type Table[K comparable] struct {
	rate    float64 // tokens per second
	burst   float64 // bucket depth
	max     int
	buckets map[K]*bucket

	evicted uint64 // keys dropped to make room (not refilled ones)
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a table of buckets that refill at rate tokens per second up
// to burst, holding at most size keys (size < 1 means 1).
func New[K comparable](rate, burst float64, size int) *Table[K] {
	return &Table[K]{rate: rate, burst: burst, max: max(size, 1), buckets: make(map[K]*bucket)}
}

// Allow takes one token from key's bucket and reports whether there was
// one. A key not seen before starts with a full bucket.
func (t *Table[K]) Allow(key K, now time.Time) bool { return t.AllowN(key, 1, now) }

// AllowN takes n tokens from key's bucket (bytes, for a byte rate) and
// reports whether there were n; when not, it takes none.
func (t *Table[K]) AllowN(key K, n float64, now time.Time) bool {
	b := t.buckets[key]
	if b == nil {
		if len(t.buckets) >= t.max {
			t.makeRoom(now)
		}
		b = &bucket{tokens: t.burst, last: now}
		t.buckets[key] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(t.burst, b.tokens+dt*t.rate)
		b.last = now
	}
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// makeRoom applies the overflow policy (see the package doc).
func (t *Table[K]) makeRoom(now time.Time) {
	t.Prune(now)
	target := t.max - max(t.max/8, 1)
	if len(t.buckets) <= target {
		return
	}
	lasts := make([]time.Time, 0, len(t.buckets))
	for _, b := range t.buckets {
		lasts = append(lasts, b.last)
	}
	slices.SortFunc(lasts, time.Time.Compare)
	cutoff := lasts[len(lasts)-target-1] // evict keys used at or before it
	for k, b := range t.buckets {
		if !b.last.After(cutoff) {
			delete(t.buckets, k)
			t.evicted++
		}
	}
}

// refund returns n tokens to key's bucket (up to its depth), undoing an
// AllowN whose caller then refused for another reason.
func (t *Table[K]) refund(key K, n float64) {
	if b := t.buckets[key]; b != nil {
		b.tokens = min(t.burst, b.tokens+n)
	}
}

// Prune forgets every key whose bucket has refilled by now.
func (t *Table[K]) Prune(now time.Time) {
	for k, b := range t.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*t.rate >= t.burst {
			delete(t.buckets, k)
		}
	}
}

// Len returns the number of keys held.
func (t *Table[K]) Len() int { return len(t.buckets) }

// Evicted returns how many keys were dropped before their bucket refilled,
// to make room for new ones.
func (t *Table[K]) Evicted() uint64 { return t.evicted }
