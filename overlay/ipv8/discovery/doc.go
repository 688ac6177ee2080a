// Package discovery finds peers with IPv8's random walk: introduction
// requests and responses, puncture requests and punctures, and the
// discovery community's ping and pong, as py-ipv8 does, so that shoal and
// py-ipv8 nodes discover each other. docs/discovery.md describes the walk,
// its timeouts and its counters; overlay/ipv8's package doc draws the
// messages.
//
// Two layers:
//
//   - Core is the walk as a state machine. Handle takes one verified
//     message and the time; Tick takes the time. Both return the
//     datagrams to send and the peer-table events (an *Output whose slices
//     the next call reuses). Core holds no goroutine, socket, clock or
//     global randomness: a seeded *rand.Rand drives its choices, which is
//     what lets sim_test.go run hundreds of nodes deterministically.
//   - Community is the driver: it registers with an ipv8.Endpoint, feeds
//     the core under one mutex, sends its datagrams and delivers its
//     events to Config.OnEvent from Run's goroutine, in order, through a
//     bounded queue (1,024 events; newer events are dropped and counted
//     past it).
//
// Caller's duties, in order: build an ipv8.Endpoint; New(endpoint, cfg)
// (which registers the community); SetLAN with the socket's address if
// cfg.LANAddress was not set; run Run(ctx) until shutdown (it returns only
// after its goroutines end, and unregisters the community); read Peers,
// Stats and events at will; WalkTo addresses learned from links.
//
// The package never sends to an address it was not given: bootstrap
// addresses, addresses of peers and of introduced peers, and (only with
// LAN discovery on) the LAN multicast group.
package discovery
