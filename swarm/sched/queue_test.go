package sched

import (
	"testing"
	"time"
)

// TestQueueTarget asserts the queue target's rule: rate*(QueueTime +
// shortest latency)/chunk size, rounded up, at least two, at most MaxQueue
// and the per-peer byte cap.
func TestQueueTarget(t *testing.T) {
	const chunk = 256 << 10
	cfg := Config{}.populate(chunk)
	for _, c := range []struct {
		name   string
		rate   float64 // bytes/s
		minLat time.Duration
		cfg    Config
		want   int
	}{
		// A host's share of another host's 50 Mbit/s uplink, shared with 6
		// other downloaders: the product calls for one.
		{"shared uplink", 0.9e6, 50 * time.Millisecond, cfg, 2},
		{"fast near peer", 40e6, 10 * time.Millisecond, cfg, 33},                                               // 40e6*0.21/262144 = 32.04
		{"long round trip", 10e6, 600 * time.Millisecond, cfg, 31},                                             // 10e6*0.8/262144 = 30.5
		{"byte cap", 400e6, 10 * time.Millisecond, cfg, 64},                                                    // 16 MiB / 256 KiB
		{"max queue 1", 0.9e6, 50 * time.Millisecond, Config{MaxQueue: 1, InitialQueue: 1}.populate(chunk), 1}, // MaxQueue wins over the floor
	} {
		p := &peer{rate: c.rate, rateN: 4, minLat: c.minLat}
		if got := p.target(&c.cfg, chunk); got != c.want {
			t.Errorf("%s: target %d, want %d", c.name, got, c.want)
		}
	}
	if got := (&peer{}).target(&cfg, chunk); got != cfg.MaxQueue {
		t.Errorf("no rate measured yet: target %d, want MaxQueue %d", got, cfg.MaxQueue)
	}
}
