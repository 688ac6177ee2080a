package ratelimit

import (
	"net/netip"
	"time"
)

// Host is the part of an address one host controls, the key of limits per
// host: an IPv4 address (/32), or the /64 of an IPv6 address (one subnet,
// what a single host or customer is commonly given, so that an attacker
// cannot multiply its budget by walking the addresses of its subnet).
// IPv4-mapped IPv6 addresses count as IPv4.
func Host(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// Sources limits datagrams at two levels: each source address (IP and
// port) has a bucket, and so has each Host. The per-source bucket keeps one
// socket from taking more than its share; the per-host bucket keeps one
// host from multiplying that share by opening many sockets (65,535 ports
// on one IPv4 address would otherwise get 65,535 budgets). A host's budget
// is a few times one source's, so that several honest peers behind one
// NAT still fit. Both tables follow the overflow policy of the package
// doc. Not safe for concurrent use, like Table.
type Sources struct {
	src  *Table[netip.AddrPort]
	host *Table[netip.Prefix]
}

// NewSources returns a limiter granting each source rate datagrams a
// second up to burst, and each host hostRate up to hostBurst, tracking at
// most size sources and size hosts.
func NewSources(rate, burst, hostRate, hostBurst float64, size int) *Sources {
	return &Sources{src: New[netip.AddrPort](rate, burst, size), host: New[netip.Prefix](hostRate, hostBurst, size)}
}

// Allow takes one token from src's bucket and one from its host's, and
// reports whether both had one; when not, it takes none, and byHost says
// the host's budget was the one spent.
func (s *Sources) Allow(src netip.AddrPort, now time.Time) (ok, byHost bool) {
	h := Host(src.Addr())
	if !s.host.AllowN(h, 1, now) {
		return false, true
	}
	if !s.src.AllowN(src, 1, now) {
		s.host.refund(h, 1)
		return false, false
	}
	return true, false
}

// Prune forgets every source and host whose bucket has refilled by now.
func (s *Sources) Prune(now time.Time) {
	s.src.Prune(now)
	s.host.Prune(now)
}

// Len returns the number of sources held.
func (s *Sources) Len() int { return s.src.Len() }

// Evicted returns how many sources and hosts were dropped before their
// bucket refilled, to make room for new ones.
func (s *Sources) Evicted() uint64 { return s.src.Evicted() + s.host.Evicted() }
