package ipv8

import (
	"errors"
	"log/slog"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Config configures an Endpoint. The zero value of every field but Key
// means its default.
type Config struct {
	// Key signs every signed message sent. Required.
	Key *identity.KeyPair
	// Logger receives debug logs of dropped datagrams (rate-limited by
	// the caller's handler, if at all). Nil discards.
	Logger *slog.Logger
	// RatePerSecond is the sustained number of datagrams accepted per
	// second from one source address (IP and port). Default 200.
	RatePerSecond float64
	// RateBurst is the bucket size of that limit. Default 400.
	RateBurst float64
	// HostRatePerSecond is the sustained number of datagrams accepted per
	// second from one host (an IPv4 address or an IPv6 /64, whatever its
	// ports), so that many sockets of one host share one budget. Default 8
	// times RatePerSecond.
	HostRatePerSecond float64
	// HostRateBurst is the bucket size of that limit. Default 8 times
	// RateBurst.
	HostRateBurst float64
	// RateTableSize bounds the number of sources tracked, and of hosts.
	// When full, refilled entries are forgotten, then the least recently
	// used (package ratelimit). Default 4096.
	RateTableSize int
	// MaxPendingRequests bounds concurrent Request calls. Default 1024.
	MaxPendingRequests int
}

func (c Config) populate() (Config, error) {
	if c.Key == nil {
		return c, errors.New("ipv8: config: Key is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RatePerSecond <= 0 {
		c.RatePerSecond = 200
	}
	if c.RateBurst <= 0 {
		c.RateBurst = 2 * c.RatePerSecond
	}
	if c.HostRatePerSecond <= 0 {
		c.HostRatePerSecond = 8 * c.RatePerSecond
	}
	if c.HostRateBurst <= 0 {
		c.HostRateBurst = 8 * c.RateBurst
	}
	if c.RateTableSize <= 0 {
		c.RateTableSize = 4096
	}
	if c.MaxPendingRequests <= 0 {
		c.MaxPendingRequests = 1024
	}
	return c, nil
}
