// Package ipv8 speaks IPv8's datagram format: the community prefix, signed
// and unsigned messages, the address encodings, and the payloads of the
// discovery messages (introduction request and response, puncture request
// and puncture, ping and pong). Its Endpoint signs, verifies, rate-limits
// and dispatches datagrams to communities registered by 20-byte ID, keeps
// the node's Lamport clock, and lets callers wait for an answer to a
// request. The random walk that uses these messages lives in
// overlay/ipv8/discovery.
//
// The package owns no socket and starts no goroutine of its own. Caller's
// duties, in order: build an Endpoint with NewEndpoint and a Writer (the
// QUIC transport, or a *net.UDPConn); Register communities (or use
// overlay/ipv8/community, which registers typed messages and runs a walk); feed every
// received datagram whose first byte is 0x00 to HandlePacket (or let
// ServeConn read a net.PacketConn); optionally run Run for housekeeping.
// Community handlers run on the goroutine that called HandlePacket and
// must not block.
//
// Everything is big-endian. Formats follow py-ipv8 (tag 3.2) so that a
// shoal node and a py-ipv8 node can talk; the version byte is 0x02.
//
// Datagram header (23 bytes):
//
//	 0      1      2                      22     23
//	+------+------+----------------------+------+---------
//	| 0x00 | 0x02 | community ID (20)    | msg  | body ...
//	+------+------+----------------------+------+---------
//
// The first byte 0x00 tells IPv8 from QUIC (QUIC always sets bit 0x40).
//
// Each message ID of a community has one of four framings (Framing):
// signed or unsigned, with or without a global time. py-ipv8's default
// (ez_send(peer, Payload), @lazy_wrapper(Payload)) has no global time;
// its discovery messages, and application messages sent with
// GlobalTimeDistributionPayload first, have one. The Lamport clock is
// raised only from a real global-time field.
//
// Signed message with global time (FramingSigned; overhead 171 bytes with
// a 74-byte key; FramingSignedNoTime omits the global time, 163 bytes):
//
//	+--------+-----------+-----------+--------------+---------+-----------+
//	| header | key len   | key       | global time  | payload | signature |
//	| 23     | uint16    | 74        | uint64       | ...     | 64        |
//	+--------+-----------+-----------+--------------+---------+-----------+
//
// The key is "LibNaCLPK:" + X25519 (32) + Ed25519 (32); other key kinds
// are malformed. The signature is Ed25519 over every byte before it,
// header included. Global time is the sender's Lamport clock: +1 per
// message sent, raised to the highest value seen.
//
// Unsigned message with global time (FramingUnsigned; overhead 31 bytes;
// FramingUnsignedNoTime is the header and the payload only):
//
//	+--------+--------------+---------+
//	| header | global time  | payload |
//	| 23     | uint64       | ...     |
//	+--------+--------------+---------+
//
// Datagrams are at most MaxDatagramSize (1,400) bytes, sent or received.
//
// Address encodings:
//
//	ipv4 (6):        | IPv4 (4) | port uint16 |
//	ip_address (7):  | 0x01 | IPv4 (4)  | port uint16 |
//	ip_address (19): | 0x03 | IPv6 (16) | port uint16 |
//
// "No address" is 0.0.0.0:0. bits is one byte of 8 flags, most
// significant first.
//
// Introduction request, old form (message 246, signed; 21 bytes + extra,
// 192-byte datagram without extra):
//
//	+-------------+------------+------------+-------+------------+-------+
//	| destination | source LAN | source WAN | flags | identifier | extra |
//	| ipv4        | ipv4       | ipv4       | bits  | uint16     | raw   |
//	+-------------+------------+------------+-------+------------+-------+
//
//	flags: 0x80|0x40 connection type (00 unknown, 10 public,
//	       11 symmetric NAT), 0x20 supports-new-style, 0x10 and 0x08
//	       unused (dispersy), 0x04 tunnel, 0x02 sync, 0x01 advice
//
// Introduction request, new form (message 234, signed; 24 bytes + extra
// with IPv4 addresses, a 195-byte datagram): identifier and flags swap.
//
//	+-------------+------------+------------+------------+-------+-------+
//	| destination | source LAN | source WAN | identifier | flags | extra |
//	| ip_address  | ip_address | ip_address | uint16     | bits  | raw   |
//	+-------------+------------+------------+------------+-------+-------+
//
// Introduction response, old form (message 245, signed):
//
//	+------+-----+-----+-----------+-----------+-------+------------+-------+
//	| dest | LAN | WAN | intro LAN | intro WAN | flags | identifier | extra |
//	| ipv4 | ipv4| ipv4| ipv4      | ipv4      | bits  | uint16     | raw   |
//	+------+-----+-----+-----------+-----------+-------+------------+-------+
//
//	flags: 0x80|0x40 connection type, 0x20 unused, 0x10 supports-new-style,
//	       0x08 intro-supports-new-style, 0x04 peer-limit-reached,
//	       0x02 and 0x01 unused
//
// Introduction response, new form (message 233, signed): the five
// addresses as ip_address, then identifier (uint16), flags (bits), extra
// (raw). Flags: 0x80 intro-supports-new-style; 0x40 peer-limit-reached (a
// shoal addition that py-ipv8 ignores).
//
// dest is the requester's address as the responder saw it; LAN and WAN
// are the responder's; intro LAN/WAN name the introduced peer (0.0.0.0:0
// when none). The identifier echoes the request's.
//
// Puncture request (250 old with ipv4, 232 new with ip_address;
// unsigned) and puncture (249 / 231; signed):
//
//	+--------------+--------------+------------+
//	| LAN          | WAN          | identifier |
//	| ipv4 / ip_a. | ipv4 / ip_a. | uint16     |
//	+--------------+--------------+------------+
//
// In a puncture request LAN and WAN are the walker's addresses (the peer
// to puncture towards); in a puncture they are the sender's.
//
// Ping (3) and pong (4), discovery community only, unsigned:
//
//	+------------+
//	| identifier |
//	| uint16     |
//	+------------+
//
// Trailing bytes after the last field are malformed unless the last field
// is raw (extra).
//
// Application payloads use py-ipv8's field formats; FieldWriter and
// FieldReader (fields.go) write and read them: varlenH, varlenHutf8,
// ipv4, ip_address, bits, uint8/16/32/64, fixed-size bytes and raw.
//
// Several Community values may register under one community ID when
// their message IDs do not overlap (an application adds its messages to
// a community whose walk the discovery package runs). Every registered
// ID has its own counters (CommunityStats).
package ipv8
