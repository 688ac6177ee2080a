package swarm

import (
	"context"
	"sync"
	"time"
)

// bucket is a token bucket of bytes, safe for concurrent use. A nil bucket
// never limits.
type bucket struct {
	rate  float64 // bytes per second
	burst float64 // bytes

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// newBucket returns a bucket for rate bytes/s with a burst of burst bytes,
// or nil when rate <= 0 (no limit).
func newBucket(rate int64, burst int) *bucket {
	if rate <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = int(min(rate/10+1, 1<<20))
	}
	return &bucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst)}
}

// wait blocks until n bytes may pass, or ctx ends. n may exceed the burst:
// the bucket then goes into debt and later callers wait for it.
func (b *bucket) wait(ctx context.Context, n int) error {
	if b == nil || n <= 0 {
		return nil
	}
	b.mu.Lock()
	now := time.Now()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	b.tokens -= float64(n)
	debt := -b.tokens
	b.mu.Unlock()
	if debt <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(debt / b.rate * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		// The bytes will not pass: give them back, so a cancelled request
		// (a reader's preemption, a timeout) does not delay the next.
		b.mu.Lock()
		b.tokens += float64(n)
		b.mu.Unlock()
		return context.Cause(ctx)
	}
}
