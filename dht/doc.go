// Package dht is shoal's Kademlia DHT: a routing table, iterative lookups and
// signed provider records ("peer P, at these addresses, serves content C
// until time T").
//
// # What it owns and what it must not do
//
// The package has two layers:
//
//   - Core, a state machine following the core contract of
//     docs/architecture.md: no goroutines, channels, sockets, time.Now,
//     global randomness or logging. Inputs are calls that carry `now`
//     (HandleMessage, Tick, Bootstrap, Provide, FindProviders, FindNode);
//     output comes from one method, Ready(dst) ([]Action, time.Time): the
//     messages to send and lookup events, in order, and when to call Tick
//     next. The same Core runs in the real node and in the discrete-event
//     simulator (internal/dhtsim).
//   - Node, the driver: New builds it and starts nothing; Run owns its one
//     goroutine, the only one that calls the Core. It fires the Core's
//     timers, feeds it received payloads (a bounded inbox) and API calls (a
//     bounded call queue), sends the Core's messages over a Network and
//     offers a blocking API (Provide, FindProviders, Bootstrap).
//
// The DHT rides the overlay's signed datagrams: each message below is the
// payload of an IPv8 signed message in the DHT community, so the receiver
// knows the sender's public key, and a node's Kademlia ID is the PeerID of
// that key. The package does not import the overlay; it declares Network
// (what it sends through) and the caller feeds received payloads to
// Node.HandleMessage with the verified sender key.
//
// # Caller's duties, in order
//
//  1. Make a Node with New (or a Core with NewCore) from a Config whose zero
//     value means defaults, the node's key pair and a Network.
//  2. Feed every DHT-community payload to HandleMessage with the address it
//     came from and the public key that signed it. Never pass payloads whose
//     datagram signature did not verify. Node.HandleMessage copies the
//     payload into a bounded queue (1,024; overflow dropped and counted in
//     InboxDrops) and never blocks.
//  3. Run the Node on a goroutine you wait for (API calls made before Run
//     wait in the bounded call queue); cancel its ctx to stop it. Pending
//     lookups then end with ErrClosed, and later calls return ErrClosed.
//  4. Bootstrap with a few known addresses, then Provide and FindProviders.
//
// # Kademlia parameters
//
// IDs are 256 bits; distance is XOR; 256 buckets of k=20 with replacement
// caches of k; a node failing 2 requests in a row leaves the table and the
// newest cached candidate, if any, takes its place; a newcomer to a full
// bucket goes to the cache and makes us ping the bucket's least recently
// seen entry if it has been silent for a minute. Lookups keep alpha=3
// queries in flight and end when the k closest candidates have answered
// (failed ones are skipped); a query unanswered after SlowAfter (a quarter
// of the 2 s request timeout) stops counting against alpha, so a silent or
// departed node holds a lookup up for 500 ms, not 2 s. Buckets not touched for an hour are refreshed
// with a lookup of a random ID in their range; after Bootstrap, every
// bucket farther than our closest neighbour is refreshed (Kademlia's join;
// Config.NoJoinRefresh turns it off). Provider records are stored on the k closest nodes that
// answered the provider's lookup, expire after 24 h and are republished
// every 12 h while the node provides the content.
//
// # Wire format (version 1)
//
// Every message fits in MaxMessageSize (1,200) bytes, so that it fits one
// IPv8 datagram with the 171-byte signed-message framing. Integers are
// big-endian.
//
//	header (6 bytes)
//	+---------+---------+--------------------------+
//	| version | type    | transaction ID (uint32)  |
//	| 0x01    | 1..8    | echoed by the reply      |
//	+---------+---------+--------------------------+
//
//	type  name            body
//	1     ping            (empty)
//	2     pong            observed address of the pinger (ip_address)
//	3     find node       target key (32)
//	4     nodes           contacts
//	5     get providers   content ID (32), then optionally a skip (uint16,
//	                      > 0; absent means 0): the records to leave out,
//	                      to ask for a later page
//	6     providers       token (uint8 len, <= 32 bytes), uint8 record count,
//	                      records, then contacts
//	7     add provider    token (uint8 len, <= 32 bytes), one record
//	8     add provider ack status (1): 0 stored, 1 bad token, 2 bad
//	                      signature, 3 not the sender's record, 4 bad expiry,
//	                      5 storage full
//
// A providers reply keeps room for 4 closer contacts, then lists the
// records (one per source group in turn, in an order fixed per requester
// and content ID by a secret salt) after skipping the request's skip, as
// many as fit, then more contacts as fit. A provider lookup asks each
// storing node that listed records for the next page (skip plus the
// records received), up to 13 pages, until a page is empty, so it sees
// every record a storing node holds. A page unanswered after SlowAfter
// stops holding the lookup's end.
//
//	contacts: uint8 count, then count times
//	+---------------+------------------------------------------+
//	| node ID (32)  | ip_address: 0x01 IPv4(4) port(2)         |
//	|               |          or 0x03 IPv6(16) port(2)        |
//	+---------------+------------------------------------------+
//
//	record (a provider record: 179 bytes + 7 per IPv4 or 19 per IPv6 address)
//	+-----------------+------------------------+-------------------+
//	| content ID (32) | provider public key    | expiry, Unix      |
//	|                 | (74, LibNaCLPK form)   | seconds (uint64)  |
//	+-----------------+------------------------+-------------------+
//	| uint8 address count (<= 4), ip_address each | signature (64)   |
//	+---------------------------------------------+------------------+
//
// The record signature is Ed25519 by the provider's key over the ASCII
// domain "shoal-dht-provider-v1" followed by every record byte before the
// signature. The provider's PeerID is BLAKE3 of its public key and is not
// carried. An IPv4-mapped IPv6 address is written as IPv4; a 0x03 address
// holding one is rejected, as are trailing bytes, unknown versions and
// types, zero ports and counts that overrun the message.
//
// # Tokens and abuse limits
//
// A providers reply carries a token: the first 16 bytes of HMAC-SHA256 of
// the requester's address and PeerID under a secret that rotates every
// 5 minutes; the current and previous secret are accepted, so a token lives
// 5 to 10 minutes. An add provider without a valid token for the sender's
// address, or with a record whose key is not the sender's, is refused.
// Requests are rate-limited per sender address and per host, an IPv4
// address or IPv6 /64 over all its ports (token buckets); storage is
// bounded in total, per provider and per content ID. Every refusal is
// counted in Counters.
package dht
