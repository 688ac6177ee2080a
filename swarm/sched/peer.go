package sched

import (
	"math"
	"time"
)

// peer is the scheduler's view of one live (or banned) peer.
type peer struct {
	id   PeerID
	slot int    // index in Scheduler.peers
	have bitset // chunks the peer announced (cleared on NotFound / bad data)
	// chunks the peer holds but asked us to fetch elsewhere (Elsewhere);
	// never also in have
	deferred bitset
	full     bool // it announced every chunk when it joined (a seeder)

	// Outstanding requests: chunk -> request index.
	reqs          map[int32]int32
	inflightBytes int64

	// Queue sizing.
	limit     int  // requests allowed outstanding
	slowStart bool // limit grows by one per success until it reaches target

	// Rate estimate (bytes/s), a moving average of delivery samples.
	rate     float64
	rateN    int
	lastDone time.Time
	carry    int64 // bytes delivered in a burst too short to measure

	// Latency estimate (RFC 6298 style).
	srtt, rttvar time.Duration
	rttN         int
	minLat       time.Duration // the shortest request latency seen (0: none yet): the link's round trip and a chunk's transfer, without queueing
	backoff      uint          // timeouts in a row: the timeout doubles per step

	// Refusals.
	busyUntil time.Time
	busyN     uint
	gone      bool // a request failed with PeerGone; wait for PeerLeft/PeerJoined

	// Trust.
	bad, badStreak int
	banned         bool

	// Statistics.
	received int64 // bytes of chunks accepted from this peer
	timeouts int

	noWork uint64 // Scheduler.workGen when a scan last found nothing
}

func newPeer(id PeerID, nchunks int, cfg *Config) *peer {
	return &peer{
		id:        id,
		have:      newBitset(nchunks),
		deferred:  newBitset(nchunks),
		reqs:      make(map[int32]int32, cfg.InitialQueue),
		limit:     cfg.InitialQueue,
		slowStart: true,
		noWork:    math.MaxUint64,
	}
}

// usable reports whether the peer may be sent requests at now at all.
func (p *peer) usable(now time.Time) bool {
	return !p.banned && !p.gone && !now.Before(p.busyUntil)
}

// rto returns the adaptive request timeout: srtt + 4*rttvar clamped to
// [MinTimeout, MaxTimeout], doubled per timeout in a row.
func (p *peer) rto(cfg *Config) time.Duration {
	t := cfg.InitialTimeout
	if p.rttN > 0 {
		t = p.srtt + 4*p.rttvar
	}
	t = min(max(t, cfg.MinTimeout), cfg.MaxTimeout)
	for i := uint(0); i < p.backoff && t < cfg.MaxTimeout; i++ {
		t *= 2
	}
	return min(t, cfg.MaxTimeout)
}

// requestTimeout returns the timeout for a request of size bytes issued
// now: the adaptive timeout, but at least twice the time the peer needs at
// its measured rate for everything queued there including this request.
func (p *peer) requestTimeout(cfg *Config, size int) time.Duration {
	t := p.rto(cfg)
	if p.rate > 0 {
		need := time.Duration(2 * float64(p.inflightBytes+int64(size)) / p.rate * float64(time.Second))
		t = max(t, min(need, cfg.MaxTimeout))
	}
	return t
}

// sampleRTT folds one latency sample in.
func (p *peer) sampleRTT(r time.Duration) {
	if r <= 0 {
		r = time.Microsecond
	}
	if p.minLat == 0 || r < p.minLat {
		p.minLat = r
	}
	if p.rttN == 0 {
		p.srtt, p.rttvar = r, r/2
	} else {
		d := p.srtt - r
		if d < 0 {
			d = -d
		}
		p.rttvar = (3*p.rttvar + d) / 4
		p.srtt = (7*p.srtt + r) / 8
	}
	p.rttN++
}

// minRateInterval is the shortest interval a rate sample is taken over;
// deliveries closer together are summed into the next sample.
const minRateInterval = time.Millisecond

// sampleRate folds a delivery of n bytes at now into the rate estimate. The
// sample covers the time since the previous delivery, or since the request
// was sent (now-latency) if the peer was idle before it.
func (p *peer) sampleRate(now time.Time, n int, latency time.Duration) {
	start := now.Add(-latency)
	if p.lastDone.After(start) {
		start = p.lastDone
	}
	p.lastDone = now
	p.carry += int64(n)
	d := now.Sub(start)
	if d < minRateInterval {
		return
	}
	sample := float64(p.carry) / d.Seconds()
	p.carry = 0
	if p.rateN == 0 {
		p.rate = sample
	} else {
		p.rate += (sample - p.rate) / 4
	}
	p.rateN++
}

// target returns the queue size the peer's measured rate calls for: the
// bytes it delivers in QueueTime plus its shortest latency seen. The
// latency term keeps the link full whatever its round trip (without it, a
// queue shorter than the round trip would measure a lower rate, call for a
// shorter queue, and so on down to one request); QueueTime is the work
// queued beyond that, which every request to the peer waits behind. It is
// at least two (MaxQueue permitting): the chunk in transfer and the next,
// so the peer never waits a round trip for our next request. A peer whose
// uplink we share with other downloaders delivers at a fraction of its
// link, so its shortest latency is short against our rate and the
// product alone calls for one; with one, our share of that uplink would
// shrink at every gap, our rate with it (TestFleet: the host with one
// request at most of its peers fell 1-3 s behind the others).
func (p *peer) target(cfg *Config, chunk int) int {
	if p.rateN == 0 {
		return cfg.MaxQueue
	}
	t := int(math.Ceil(p.rate * (cfg.QueueTime + p.minLat).Seconds() / float64(chunk)))
	if cfg.MaxPeerInflightBytes > 0 {
		t = min(t, int(cfg.MaxPeerInflightBytes/int64(chunk)))
	}
	return min(max(t, minQueue), cfg.MaxQueue)
}

// minQueue is the least queue target (see target).
const minQueue = 2

// onSuccess grows or trims the queue after a delivered chunk: by one per
// success in slow start, then one step per success towards the target.
func (p *peer) onSuccess(cfg *Config, chunk int) {
	t := p.target(cfg, chunk)
	if p.slowStart {
		if p.rateN >= 2 && p.limit >= t {
			p.slowStart = false
		} else {
			p.limit++
		}
	}
	if !p.slowStart {
		switch {
		case p.limit < t:
			p.limit++
		case p.limit > t:
			p.limit--
		}
	}
	p.limit = min(max(p.limit, 1), cfg.MaxQueue)
	p.backoff = 0
	p.busyN = 0
}

// onTimeout halves the queue and doubles the next timeout.
func (p *peer) onTimeout() {
	p.slowStart = false
	p.limit = max(1, p.limit/2)
	if p.backoff < 6 {
		p.backoff++
	}
	p.timeouts++
}

// onBusy halves the queue and leaves the peer alone for a while. Refusals
// that arrive while the peer is already left alone answer requests sent
// before the first refusal: they count once, not as refusals in a row.
func (p *peer) onBusy(now time.Time, cfg *Config) {
	if now.Before(p.busyUntil) {
		return
	}
	p.slowStart = false
	p.limit = max(1, p.limit/2)
	d := cfg.BusyBackoff
	for i := uint(0); i < p.busyN && d < cfg.MaxBusyBackoff; i++ {
		d *= 2
	}
	p.busyUntil = now.Add(min(d, cfg.MaxBusyBackoff))
	if p.busyN < 16 {
		p.busyN++
	}
}
