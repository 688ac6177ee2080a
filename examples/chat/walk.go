package main

import (
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/overlay/ipv8/discovery"
)

// walkConfig is py-ipv8's walk except for the bootstrap interval: a chat
// started just before its bootstrap peer (its first request lost) asks
// again after 2 s, not 30.
func walkConfig(boot []netip.AddrPort) discovery.Config {
	return discovery.Config{Bootstrap: boot, BootstrapInterval: 2 * time.Second}
}
