package discovery

import (
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// CommunityID is py-ipv8's discovery community, which shoal joins by
// default so that shoal and py-ipv8 nodes find each other.
var CommunityID = ipv8.MustCommunityID("7e313685c1912a141279f8248fc8db5899c5df5a")

// Config configures the walk. The zero value of every field means its
// default; durations are wall-clock time.
type Config struct {
	// Community is the community ID walked in. Default CommunityID.
	Community ipv8.CommunityID
	// TargetPeers is the peer count the walk aims for. Default 20.
	TargetPeers int
	// MaxPeers is the table's capacity; introduction requests from new
	// peers past it are answered with the peer-limit flag and not added.
	// Default 30 (and at least TargetPeers).
	MaxPeers int
	// WalkInterval is the time between walk steps. Default 500 ms.
	WalkInterval time.Duration
	// IntroTimeout is how long an introduction request stays pending.
	// Default 3 s.
	IntroTimeout time.Duration
	// PingAfter is the idle time after which a peer is pinged. Default
	// 27.5 s.
	PingAfter time.Duration
	// DropAfter is the silence after which a peer is dropped (the churn
	// timeout). Default 57.5 s.
	DropAfter time.Duration
	// BootstrapInterval is the least time between two rounds of requests
	// to the bootstrap addresses. Default 30 s.
	BootstrapInterval time.Duration
	// Bootstrap lists addresses to ask for introductions when the table
	// is empty (and now and then after). A bootstrap address that answers
	// as a full peer is listed, introduced and churned like any other,
	// but does not count toward TargetPeers.
	Bootstrap []netip.AddrPort
	// LANAddress is this node's own address on its local network, sent
	// in every request, response and puncture. New defaults it to the
	// endpoint's socket address (ipv8.Endpoint.LocalAddr). For a
	// wildcard address (a socket bound to 0.0.0.0 or ::), the address
	// sent to a peer is that of the interface that reaches it.
	LANAddress netip.AddrPort
	// LocalAddrFor returns the local interface address that reaches dst,
	// used when LANAddress is a wildcard. New defaults it to a routing
	// lookup (a connected UDP socket that sends nothing), cached per
	// destination; a Core built directly without it sends the wildcard.
	LocalAddrFor func(dst netip.Addr) netip.Addr
	// InLANSubnet reports whether an address lies in a subnet of one of
	// this node's interfaces. A response's view of our address outside
	// them becomes our WAN address (py-ipv8's rule). New defaults it to
	// the interfaces' subnets when New runs; a Core built directly
	// without it believes only public addresses.
	InLANSubnet func(netip.Addr) bool
	// MaxWalkable bounds the addresses learned from introductions and
	// not yet contacted. Default 256.
	MaxWalkable int
	// LAN configures local-network announcements. Off by default.
	LAN LANConfig
	// OnEvent, when set, receives peer added/removed events, in order, on
	// the goroutine running Community.Run, which also drives the walk: it
	// must not block for long.
	OnEvent func(Event)
	// Logger receives debug logs. Nil discards.
	Logger *slog.Logger
	// Seed seeds the walk's random choices (peer selection, identifiers);
	// 0 picks a random seed.
	Seed uint64
}

// LANConfig configures local-network discovery: a UDP multicast
// announcement of this node's port, on which receivers walk to it.
type LANConfig struct {
	// Enabled turns announcements and listening on. Default off.
	Enabled bool
	// Group is the multicast group and port. Default 239.255.70.77:7077.
	Group netip.AddrPort
	// Interval is the time between announcements. Default 10 s.
	Interval time.Duration
}

// Durations py-ipv8 peers expect.
const (
	DefaultWalkInterval      = 500 * time.Millisecond
	DefaultIntroTimeout      = 3 * time.Second
	DefaultPingAfter         = 27500 * time.Millisecond
	DefaultDropAfter         = 57500 * time.Millisecond
	DefaultBootstrapInterval = 30 * time.Second
)

func (c Config) populate() (Config, error) {
	if c.Community == (ipv8.CommunityID{}) {
		c.Community = CommunityID
	}
	if c.TargetPeers <= 0 {
		c.TargetPeers = 20
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = 30
	}
	c.MaxPeers = max(c.MaxPeers, c.TargetPeers)
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.WalkInterval, DefaultWalkInterval)
	def(&c.IntroTimeout, DefaultIntroTimeout)
	def(&c.PingAfter, DefaultPingAfter)
	def(&c.DropAfter, DefaultDropAfter)
	def(&c.BootstrapInterval, DefaultBootstrapInterval)
	if c.MaxWalkable <= 0 {
		c.MaxWalkable = 256
	}
	if c.DropAfter <= c.PingAfter {
		return c, errors.New("discovery: config: DropAfter must exceed PingAfter")
	}
	if !c.LAN.Group.IsValid() {
		c.LAN.Group = netip.MustParseAddrPort("239.255.70.77:7077")
	}
	def(&c.LAN.Interval, 10*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Bootstrap = append([]netip.AddrPort(nil), c.Bootstrap...)
	for i, a := range c.Bootstrap {
		c.Bootstrap[i] = unmap(a)
	}
	return c, nil
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }
