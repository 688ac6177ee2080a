package ipv8

import (
	"net/netip"

	"github.com/shoal-p2p/shoal/ratelimit"
)

// rateTable is the endpoint's bounded set of token buckets keyed by source
// address: shoal's one token bucket (package ratelimit, whose doc states the
// overflow policy). Not safe for concurrent use; the Endpoint guards it.
type rateTable = ratelimit.Table[netip.AddrPort]

func newRateTable(rate, burst float64, max int) *rateTable {
	return ratelimit.New[netip.AddrPort](rate, burst, max)
}
