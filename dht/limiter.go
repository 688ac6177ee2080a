package dht

import (
	"net/netip"
	"time"
)

// limiter is a token bucket per sender address. Its table is bounded: when
// full, senders whose bucket has refilled are forgotten, and if that frees
// nothing the table is cleared (a flood of spoofed addresses cannot lock
// out real senders for long).
type limiter struct {
	rate    float64
	burst   float64
	max     int
	senders map[netip.AddrPort]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst, max int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), max: max, senders: make(map[netip.AddrPort]*tokenBucket)}
}

func (l *limiter) allow(from netip.AddrPort, now time.Time) bool {
	b := l.senders[from]
	if b == nil {
		if len(l.senders) >= l.max {
			l.sweep(now)
			if len(l.senders) >= l.max {
				clear(l.senders)
			}
		}
		b = &tokenBucket{tokens: l.burst, last: now}
		l.senders[from] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep forgets senders whose bucket would be full again by now.
func (l *limiter) sweep(now time.Time) {
	for a, b := range l.senders {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.senders, a)
		}
	}
}
