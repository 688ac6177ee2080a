// Package community is IPv8's application framework for Go programs: a
// community is a 20-byte ID, typed messages and their handlers, and a
// random walk that finds the community's peers, all on the node's one
// socket (an ipv8.Endpoint). Messages are framed as py-ipv8 frames them,
// so a Go community and a py-ipv8 community that declare the same
// payloads talk to each other. docs/communities.md is the guide, with
// examples/chat as the worked example.
//
// A message type (MessageType) is a message ID, a framing and an
// encode/decode pair over py-ipv8's field formats (ipv8.FieldWriter and
// ipv8.FieldReader: varlenH, varlenHutf8, ipv4, ip_address, bits,
// fixed-size integers, raw). The framing is chosen per message:
// ipv8.FramingSignedNoTime is py-ipv8's default (ez_send(peer, Payload),
// @lazy_wrapper(Payload)); ipv8.FramingSigned adds a global time
// (GlobalTimeDistributionPayload first); the unsigned ones drop the key
// and signature. Only a real global-time field raises the node's Lamport
// clock.
//
// Caller's duties, in order: New(endpoint, cfg) (starts nothing);
// Declare or Handle every message type; Run(ctx) (registers the messages
// with the endpoint, runs the walk and the handler goroutine, and
// returns after they exit); Send, Broadcast, Request and Peers at will,
// from any goroutine.
//
// Bounds: the endpoint rate-limits every source address for all
// communities; received messages wait for the handler goroutine in a
// queue of Config.QueueSize (past it the newest are dropped and
// counted); concurrent Requests are bounded by the endpoint; the walk's
// tables are bounded by its own configuration. Handlers run one at a
// time on the community's handler goroutine: a slow handler delays only
// its own community.
package community
