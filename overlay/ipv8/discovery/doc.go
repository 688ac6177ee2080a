// Package discovery finds peers with IPv8's random walk: introduction
// requests and responses, puncture requests and punctures, and the
// discovery community's ping and pong, as py-ipv8 does, so that shoal and
// py-ipv8 nodes discover each other. docs/discovery.md describes the walk,
// its timeouts and its counters; overlay/ipv8's package doc draws the
// messages.
//
// Two layers:
//
//   - Core is the walk as a state machine (the core contract of
//     docs/architecture.md): events and the time go in (Handle(now, m),
//     Tick(now), WalkTo(now, addr)); Ready(dst) appends the pending
//     actions (datagrams to send, peer-table events, in order) and
//     returns the time Tick is next due. Core holds no goroutine, socket,
//     clock or global randomness: a seeded *rand.Rand drives its choices,
//     which is what lets sim_test.go run hundreds of nodes
//     deterministically. The only outside knowledge it asks for comes
//     through two functions of its Config that the driver fills in
//     (LocalAddrFor, a cached routing lookup for wildcard binds, and
//     InLANSubnet, the host's interface subnets as New saw them); the
//     simulator leaves them unset.
//   - Community is the driver. Run registers it with an ipv8.Endpoint
//     and owns the core on one goroutine: received messages (1,024
//     queued) and WalkTo addresses (64 queued) reach it through bounded
//     channels, the newest dropped and counted past them; it sends the
//     core's datagrams, hands its events to Config.OnEvent in order, and
//     publishes a snapshot (peers, counters, addresses) that Peers, Stats
//     and Addresses read from any goroutine.
//
// Addresses: the LAN address announced is the socket's (New asks the
// endpoint), or for a wildcard bind the interface address that reaches
// the peer; the WAN address is the one public peers report seeing, and
// the LAN address until one does. A bootstrap address that answers as a
// full peer is listed, introduced and churned (Peer.Bootstrap set), but
// does not count toward TargetPeers and is not walked to between
// bootstrap rounds.
//
// Caller's duties, in order: build an ipv8.Endpoint; New(endpoint, cfg)
// (which starts nothing); run Run(ctx) until shutdown (it registers the
// community, returns only after its goroutines end, and unregisters it);
// read Peers, Stats and events at will; WalkTo addresses learned from
// links.
//
// The package never sends to an address it was not given: bootstrap
// addresses, addresses of peers and of introduced peers, and (only with
// LAN discovery on) the LAN multicast group.
package discovery
