package seed

import (
	"context"
	"errors"
	"net/netip"

	"github.com/shoal-p2p/shoal/overlay/ipv8"
	"github.com/shoal-p2p/shoal/overlay/ipv8/community"
)

// NewCommunity builds an application community on the node's socket (see
// overlay/ipv8/community and docs/communities.md). Unless cfg.Walk lists
// its own, the community's walk bootstraps from the node's bootstrap
// addresses; a community with the ID of the node's discovery walk
// (py-ipv8's discovery community) shares that walk. Declare its message
// types, then StartCommunity.
func (n *Node) NewCommunity(cfg community.Config) (*community.Community, error) {
	if cfg.ID == n.disc.ID() && cfg.SharedWalk == nil {
		cfg.SharedWalk = n.disc
	}
	if len(cfg.Walk.Bootstrap) == 0 {
		for _, b := range n.cfg.Bootstrap {
			cfg.Walk.Bootstrap = append(cfg.Walk.Bootstrap, netip.MustParseAddrPort(b)) // checked by FillDefaults
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = n.log
	}
	return community.New(n.ov.Endpoint(), cfg)
}

// StartCommunity runs c, built by NewCommunity, until the node closes.
func (n *Node) StartCommunity(c *community.Community) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	n.communities = append(n.communities, c)
	n.goRun(func(ctx context.Context) {
		if err := c.Run(ctx); err != nil && !errors.Is(err, context.Cause(ctx)) {
			n.log.Warn("community stopped", "community", c.ID().String(), "err", err)
		}
	})
	return nil
}

// CommunityStats returns the message counters of the node's discovery
// walk, its DHT and every started application community, by community
// ID (for /metrics).
func (n *Node) CommunityStats() map[ipv8.CommunityID]community.Stats {
	n.mu.Lock()
	cs := append([]*community.Community(nil), n.communities...)
	n.mu.Unlock()
	out := map[ipv8.CommunityID]community.Stats{}
	ep := n.ov.Endpoint()
	for _, id := range ep.Communities() {
		s, _ := ep.CommunityStats(id)
		out[id] = community.Stats{CommunityStats: s}
	}
	d := out[n.disc.ID()]
	d.Peers, d.Walk = n.disc.NumPeers(), n.disc.Stats()
	out[n.disc.ID()] = d
	for _, c := range cs {
		out[c.ID()] = c.Stats()
	}
	return out
}
