package ipv8

import (
	"github.com/shoal-p2p/shoal/ratelimit"
)

// rateTable is the endpoint's bounded set of token buckets keyed by source
// address and by host: shoal's one token bucket (package ratelimit, whose
// doc states the overflow policy). Not safe for concurrent use; the
// Endpoint guards it.
type rateTable = ratelimit.Sources

func newRateTable(cfg Config) *rateTable {
	return ratelimit.NewSources(cfg.RatePerSecond, cfg.RateBurst, cfg.HostRatePerSecond, cfg.HostRateBurst, cfg.RateTableSize)
}
