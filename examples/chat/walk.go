package main

import (
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/overlay/ipv8/discovery"
)

// walkConfig is py-ipv8's walk except for the bootstrap interval: a chat
// started before its bootstrap peer asks again after 5 s, not 30.
func walkConfig(boot []netip.AddrPort) discovery.Config {
	return discovery.Config{Bootstrap: boot, BootstrapInterval: 5 * time.Second}
}
