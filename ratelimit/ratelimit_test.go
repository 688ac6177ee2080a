package ratelimit

import (
	"testing"
	"time"
)

func TestBurstThenRate(t *testing.T) {
	tb := New[int](2, 5, 16)
	now := time.Unix(1000, 0)
	got := 0
	for range 20 {
		if tb.Allow(1, now) {
			got++
		}
	}
	if got != 5 {
		t.Errorf("allowed %d of 20 at once, want the burst of 5", got)
	}
	now = now.Add(time.Second) // 2 tokens back
	got = 0
	for range 20 {
		if tb.Allow(1, now) {
			got++
		}
	}
	if got != 2 {
		t.Errorf("allowed %d after 1 s at 2/s, want 2", got)
	}
	if !tb.Allow(2, now) {
		t.Error("another key shares the first key's bucket")
	}
}

func TestBoundedUnderSpoofedFlood(t *testing.T) {
	tb := New[int](1, 2, 64)
	now := time.Unix(1000, 0)
	for i := range 10000 {
		tb.Allow(i, now)
		if tb.Len() > 64 {
			t.Fatalf("table holds %d keys after %d, max 64", tb.Len(), i+1)
		}
	}
	if tb.Evicted() == 0 {
		t.Error("a flood of new keys evicted nothing: not counted")
	}
	// A real sender that stays in the table keeps its limit.
	tb2 := New[int](1, 2, 64)
	tb2.Allow(-1, now)
	tb2.Allow(-1, now)
	if tb2.Allow(-1, now) {
		t.Error("third request within the burst of 2 allowed")
	}
}

func TestPruneForgetsRefilled(t *testing.T) {
	tb := New[int](1, 2, 8)
	now := time.Unix(1000, 0)
	for i := range 8 {
		tb.Allow(i, now)
	}
	tb.Prune(now.Add(500 * time.Millisecond))
	if tb.Len() != 8 {
		t.Errorf("Prune before refill left %d keys, want 8", tb.Len())
	}
	tb.Prune(now.Add(10 * time.Second))
	if tb.Len() != 0 {
		t.Errorf("Prune after refill left %d keys, want 0", tb.Len())
	}
}

func BenchmarkAllow(b *testing.B) {
	tb := New[int](1e9, 1e9, 1024)
	now := time.Unix(1000, 0)
	b.ReportAllocs()
	for i := range b.N {
		tb.Allow(i&511, now)
	}
}

func TestAllowN(t *testing.T) {
	now := time.Unix(1000, 0)
	tb := New[string](100, 1000, 4) // 100 bytes/s, 1000 deep
	if !tb.AllowN("a", 600, now) || tb.AllowN("a", 600, now) {
		t.Fatal("a full 1000-token bucket should give 600 once, then refuse 600")
	}
	if !tb.AllowN("a", 400, now) {
		t.Fatal("the refused take must not have taken tokens: 400 remain")
	}
	if tb.AllowN("a", 100, now.Add(500*time.Millisecond)) || !tb.AllowN("a", 100, now.Add(time.Second)) {
		t.Fatal("refill: 50 tokens after 0.5 s are too few for 100; 100 after 1 s suffice")
	}
}
