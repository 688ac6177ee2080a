package sched

import (
	"errors"
	"fmt"
	"time"
)

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("sched: bad config")

// Config tunes the scheduler. The zero value means defaults; every field
// documents its default and unit. New fills and validates a copy.
type Config struct {
	// MaxInflightBytes caps the bytes of all outstanding requests together
	// (endgame duplicates included). Default 64 MiB; raised to the chunk
	// size if smaller.
	MaxInflightBytes int64
	// MaxPeerInflightBytes caps the bytes outstanding at one peer.
	// Default 16 MiB; raised to the chunk size if smaller.
	MaxPeerInflightBytes int64
	// MaxQueue caps the number of requests outstanding at one peer.
	// Default 64 requests.
	MaxQueue int
	// InitialQueue is a new peer's queue size (slow start begins here).
	// Default 2 requests.
	InitialQueue int
	// QueueTime is how much work, in time at the peer's measured rate, a
	// peer's queue holds once slow start ends, beyond the peer's shortest
	// latency seen (its round trip and one chunk's transfer): queue =
	// rate*(QueueTime+shortest latency)/chunk size, at least 2. Every
	// request to the peer waits behind that work (the peer's transport
	// buffers what it is asked for), so a chunk that only it holds reaches
	// us that much later, and the peers we pass it on to later still.
	// Default 200 ms.
	QueueTime time.Duration
	// InitialTimeout is the request timeout before a peer's latency has
	// been measured. Default 10 s.
	InitialTimeout time.Duration
	// MinTimeout and MaxTimeout clamp the adaptive request timeout
	// (srtt + 4*rttvar, doubled after each timeout). Defaults 1 s and 60 s.
	MinTimeout time.Duration
	MaxTimeout time.Duration
	// BusyBackoff is how long a peer that refused a request as busy is left
	// alone; it doubles with each refusal in a row up to MaxBusyBackoff.
	// Defaults 1 s and 30 s.
	BusyBackoff    time.Duration
	MaxBusyBackoff time.Duration
	// MaxDuplicates caps the outstanding requests for one chunk in the
	// endgame (1 turns duplication off). Default 2.
	MaxDuplicates int
	// ElsewhereWait is how long a chunk a peer asked us to fetch elsewhere
	// (Elsewhere) waits for another peer to announce it before that peer
	// is asked again. A super-seeding seeder refuses only chunks their
	// first recipient announced, to us too as a rule, so a short wait
	// covers a race between the two messages. Default 100 ms.
	ElsewhereWait time.Duration
	// MaxElsewhereWait bounds how long a deferred chunk waits while the
	// peer that deferred it still has other chunks for us (see
	// expireDeferrals); once it has none, ElsewhereWait applies. A value
	// at most ElsewhereWait asks again after ElsewhereWait whatever the
	// peer has for us. Default 2 s.
	MaxElsewhereWait time.Duration
	// BanAfter bans a peer after this many chunks failed verification.
	// Default 3 chunks.
	BanAfter int
	// BanStreak bans a peer after this many failed chunks in a row (no good
	// chunk between them). Default 2 chunks.
	BanStreak int
}

// Defaults of Config's fields.
const (
	DefaultMaxInflightBytes     = 64 << 20
	DefaultMaxPeerInflightBytes = 16 << 20
	DefaultMaxQueue             = 64
	DefaultInitialQueue         = 2
	DefaultQueueTime            = 200 * time.Millisecond
	DefaultInitialTimeout       = 10 * time.Second
	DefaultMinTimeout           = time.Second
	DefaultMaxTimeout           = 60 * time.Second
	DefaultBusyBackoff          = time.Second
	DefaultMaxBusyBackoff       = 30 * time.Second
	DefaultMaxDuplicates        = 2
	DefaultElsewhereWait        = 100 * time.Millisecond
	DefaultMaxElsewhereWait     = 2 * time.Second
	DefaultBanAfter             = 3
	DefaultBanStreak            = 2
	maxDuplicatesLimit          = 8
)

// populate returns c with zero fields set to their defaults, and the byte
// caps raised to at least one chunk of chunkSize bytes.
func (c Config) populate(chunkSize int) Config {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	defi := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxInflightBytes, DefaultMaxInflightBytes)
	def(&c.MaxPeerInflightBytes, DefaultMaxPeerInflightBytes)
	defi(&c.MaxQueue, DefaultMaxQueue)
	defi(&c.InitialQueue, DefaultInitialQueue)
	defd(&c.QueueTime, DefaultQueueTime)
	defd(&c.InitialTimeout, DefaultInitialTimeout)
	defd(&c.MinTimeout, DefaultMinTimeout)
	defd(&c.MaxTimeout, DefaultMaxTimeout)
	defd(&c.BusyBackoff, DefaultBusyBackoff)
	defd(&c.MaxBusyBackoff, DefaultMaxBusyBackoff)
	defi(&c.MaxDuplicates, DefaultMaxDuplicates)
	defd(&c.ElsewhereWait, DefaultElsewhereWait)
	defd(&c.MaxElsewhereWait, DefaultMaxElsewhereWait)
	defi(&c.BanAfter, DefaultBanAfter)
	defi(&c.BanStreak, DefaultBanStreak)
	if c.MaxInflightBytes > 0 && c.MaxInflightBytes < int64(chunkSize) {
		c.MaxInflightBytes = int64(chunkSize)
	}
	if c.MaxPeerInflightBytes > 0 && c.MaxPeerInflightBytes < int64(chunkSize) {
		c.MaxPeerInflightBytes = int64(chunkSize)
	}
	return c
}

// validate reports the first field of a populated config that is out of range.
func (c Config) validate() error {
	switch {
	case c.MaxInflightBytes < 0:
		return fmt.Errorf("%w: MaxInflightBytes %d", ErrConfig, c.MaxInflightBytes)
	case c.MaxPeerInflightBytes < 0:
		return fmt.Errorf("%w: MaxPeerInflightBytes %d", ErrConfig, c.MaxPeerInflightBytes)
	case c.MaxQueue < 1:
		return fmt.Errorf("%w: MaxQueue %d", ErrConfig, c.MaxQueue)
	case c.InitialQueue < 1 || c.InitialQueue > c.MaxQueue:
		return fmt.Errorf("%w: InitialQueue %d (MaxQueue %d)", ErrConfig, c.InitialQueue, c.MaxQueue)
	case c.QueueTime < 0:
		return fmt.Errorf("%w: QueueTime %v", ErrConfig, c.QueueTime)
	case c.MinTimeout < 0 || c.MaxTimeout < c.MinTimeout:
		return fmt.Errorf("%w: timeouts %v..%v", ErrConfig, c.MinTimeout, c.MaxTimeout)
	case c.InitialTimeout < 0:
		return fmt.Errorf("%w: InitialTimeout %v", ErrConfig, c.InitialTimeout)
	case c.BusyBackoff < 0 || c.MaxBusyBackoff < c.BusyBackoff:
		return fmt.Errorf("%w: busy backoff %v..%v", ErrConfig, c.BusyBackoff, c.MaxBusyBackoff)
	case c.MaxDuplicates < 1 || c.MaxDuplicates > maxDuplicatesLimit:
		return fmt.Errorf("%w: MaxDuplicates %d (1..%d)", ErrConfig, c.MaxDuplicates, maxDuplicatesLimit)
	case c.BanAfter < 1 || c.BanStreak < 1:
		return fmt.Errorf("%w: BanAfter %d BanStreak %d", ErrConfig, c.BanAfter, c.BanStreak)
	}
	return nil
}
