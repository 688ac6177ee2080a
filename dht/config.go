package dht

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Config tunes a Core or Node. The zero value means defaults; each field
// documents its default and unit.
type Config struct {
	// K is the bucket size and the replication factor. Default 20.
	K int
	// Alpha is the number of queries a lookup keeps in flight. Default 3.
	Alpha int
	// RequestTimeout is how long a request waits for its reply. Default 2 s.
	RequestTimeout time.Duration
	// SlowAfter: a lookup query unanswered after this long no longer
	// counts against Alpha, so another is sent beside it (it may still
	// answer until RequestTimeout). Default RequestTimeout/4.
	SlowAfter time.Duration
	// MaxFailures is how many requests in a row a node may leave unanswered
	// before it leaves the routing table. Default 2.
	MaxFailures int
	// PingAfter is how long the head of a full bucket may stay silent before
	// a newcomer makes us ping it. Default 1 min.
	PingAfter time.Duration
	// RefreshInterval is how long a bucket may go without a lookup before it
	// is refreshed. Default 1 h.
	RefreshInterval time.Duration
	// NoJoinRefresh turns off the refresh of buckets farther than the
	// closest neighbour after Bootstrap (Kademlia's join). Default false.
	NoJoinRefresh bool
	// RecordTTL is the lifetime of our provider records, and the longest
	// lifetime (plus 10 min of clock skew) we accept from others.
	// Default 24 h.
	RecordTTL time.Duration
	// RepublishInterval is how often we re-announce what we provide.
	// Default RecordTTL/2.
	RepublishInterval time.Duration
	// TokenRotation is how often the token secret changes; a token is valid
	// for one to two rotations. Default 5 min.
	TokenRotation time.Duration
	// MaxRecords bounds stored provider records in total. Default 65,536.
	MaxRecords int
	// MaxRecordsPerProvider bounds stored records of one provider.
	// Default 1,024.
	MaxRecordsPerProvider int
	// MaxProvidersPerKey bounds stored records for one content ID.
	// Default 64.
	MaxProvidersPerKey int
	// MaxProvidersPerGroup bounds stored records for one content ID stored
	// from one source group (a public /24 or /48, or one private address).
	// Default 8.
	MaxProvidersPerGroup int
	// RequestRate is the sustained number of requests per second one sender
	// address may make; more are dropped and counted. Default 50.
	RequestRate float64
	// RequestBurst is the token-bucket depth of RequestRate. Default 100.
	RequestBurst int
	// HostRequestRate is the sustained number of requests per second one
	// host (an IPv4 address or an IPv6 /64, over all its ports) may make,
	// so that many sockets of one host share one budget. Default 8 times
	// RequestRate.
	HostRequestRate float64
	// HostRequestBurst is the token-bucket depth of HostRequestRate.
	// Default 8 times RequestBurst.
	HostRequestBurst int
	// MaxSenders bounds the rate limiter's table of sender addresses (and
	// of hosts); when
	// full, idle senders are forgotten, then arbitrary ones (package
	// ratelimit states the policy). Default 8,192.
	MaxSenders int
	// MaxProvidersPerLookup ends a provider lookup after this many distinct
	// providers. Default 64.
	MaxProvidersPerLookup int
	// Addrs are the addresses put in our provider records (at most
	// MaxRecordAddrs). Default: the address peers last said they saw us at.
	Addrs []netip.AddrPort
	// Logger receives debug logs. Default: discard.
	Logger *slog.Logger
}

// SimConfig returns defaults suited to simulating thousands of nodes:
// shorter request timeouts, so lookups that meet departed nodes finish
// sooner in simulated time, and no join refresh (it costs about ten lookups
// per joining node; tables fill from the traffic instead).
func SimConfig() Config {
	return Config{RequestTimeout: 500 * time.Millisecond, NoJoinRefresh: true}
}

func (c Config) withDefaults() (Config, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.K, 20)
	def(&c.Alpha, 3)
	def(&c.MaxFailures, 2)
	def(&c.MaxRecords, 65536)
	def(&c.MaxRecordsPerProvider, 1024)
	def(&c.MaxProvidersPerKey, 64)
	def(&c.MaxProvidersPerGroup, 8)
	def(&c.RequestBurst, 100)
	def(&c.HostRequestBurst, 8*c.RequestBurst)
	def(&c.MaxSenders, 8192)
	def(&c.MaxProvidersPerLookup, 64)
	defDur(&c.RequestTimeout, 2*time.Second)
	defDur(&c.SlowAfter, c.RequestTimeout/4)
	defDur(&c.PingAfter, time.Minute)
	defDur(&c.RefreshInterval, time.Hour)
	defDur(&c.RecordTTL, 24*time.Hour)
	defDur(&c.RepublishInterval, c.RecordTTL/2)
	defDur(&c.TokenRotation, 5*time.Minute)
	if c.RequestRate == 0 {
		c.RequestRate = 50
	}
	if c.HostRequestRate == 0 {
		c.HostRequestRate = 8 * c.RequestRate
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.K < 1 || c.K > 64:
		return c, fmt.Errorf("dht: config: K %d out of range 1..64", c.K)
	case c.Alpha < 1 || c.Alpha > c.K:
		return c, fmt.Errorf("dht: config: Alpha %d out of range 1..K", c.Alpha)
	case c.RequestTimeout < 0 || c.SlowAfter < 0 || c.PingAfter < 0 || c.RefreshInterval < 0 || c.RecordTTL < time.Minute || c.TokenRotation < 0:
		return c, fmt.Errorf("dht: config: negative duration or RecordTTL under a minute")
	case c.RepublishInterval <= 0 || c.RepublishInterval >= c.RecordTTL:
		return c, fmt.Errorf("dht: config: RepublishInterval %v must be positive and shorter than RecordTTL %v", c.RepublishInterval, c.RecordTTL)
	case c.RequestRate < 0 || c.RequestBurst < 1 || c.HostRequestRate < 0 || c.HostRequestBurst < 1:
		return c, fmt.Errorf("dht: config: bad rate limit %v/s burst %d", c.RequestRate, c.RequestBurst)
	case len(c.Addrs) > MaxRecordAddrs:
		return c, fmt.Errorf("dht: config: %d addresses, at most %d", len(c.Addrs), MaxRecordAddrs)
	}
	for _, a := range c.Addrs {
		if !validAddr(a) {
			return c, fmt.Errorf("dht: config: unusable address %s", a)
		}
	}
	return c, nil
}
