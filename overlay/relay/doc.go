// Package relay forwards QUIC packets between two peers that cannot reach
// each other directly (both behind symmetric NATs, say) through a third,
// reachable peer that opted in to relay. QUIC runs end to end over the
// relay: the two peers' TLS 1.3 handshake authenticates both identity keys
// and derives keys the relay never sees, so the relay forwards ciphertext
// only and cannot read, alter unnoticed or impersonate either side.
//
// A Conn wraps a node's UDP socket (a net.PacketConn) beneath quic-go and
// the IPv8 endpoint. Relay frames share the socket with QUIC and IPv8: their
// first byte, 0x3c, has the QUIC fixed bit (0x40) and long-header bit
// (0x80) clear, so quic-go never takes one for QUIC, and it is not IPv8's
// 0x00. Every other packet passes through unchanged. A Conn can be a relay
// (Config.Serve), a client of relays, or both.
//
// # Wire format
//
// Every frame is one UDP datagram; integers are big-endian:
//
//	offset  size  field
//	0       1     magic 0x3c
//	1       1     type
//	2       ...   body, by type:
//
//	type  name        direction        body
//	0x01  hello       client -> relay  zero padding, 16 bytes (no amplification: the cookie frame is as long)
//	0x02  cookie      relay -> client  cookie (16)
//	0x03  register    client -> relay  cookie (16) | public key (74) | Ed25519 signature (64)
//	0x04  registered  relay -> client  lifetime in seconds (2)
//	0x05  connect     client -> relay  target peer ID (32)
//	0x06  session     relay -> client  session (4) | target peer ID (32)
//	0x07  data        both ways        session (4) | one QUIC packet (1..MaxPayload)
//	0x08  refused     relay -> client  reason (1) | target peer ID (32)
//
// The cookie is the first 16 bytes of a keyed BLAKE3 of the client's
// address and the current minute under a secret of the relay, so it
// proves the client receives at its address (no spoofed registration). The
// signature, by the client's identity key, covers "shoal relay register
// v1" | cookie; the relay then knows the client's peer ID (BLAKE3 of the
// key) and reaches it at the address the register came from.
//
// # Sessions and budget
//
// A registered client sends connect for a target peer ID. If the target is
// registered too, the relay opens a session between the two addresses and
// answers with its 4-byte ID (random); otherwise it refuses. The relay
// forwards a data frame only when it comes from one of its session's two
// addresses, and only to the other one: it never sends to an address that
// did not register with a signed key, so it is no open proxy. Each session
// has a byte budget (Config.PairBudget) and a rate (Config.PairRate); the
// relay has a global rate (Config.Rate) and caps on registered clients
// (Config.MaxClients), sessions (Config.MaxPairs) and sessions per client
// (Config.MaxPairsPerClient). Over a cap, connect is refused; over a rate,
// data is dropped (QUIC's congestion control backs off); over a budget the
// session ends. Registrations last Config.Lifetime unless renewed; a
// session ends after Config.Lifetime without data. Stats counts it all.
//
// The receiving side learns a session from its first data frame and gives
// it a virtual address in 100::/64 (RFC 6666's discard-only prefix: were a
// packet ever sent there by mistake it goes nowhere), which quic-go sees as
// the peer's address. Writes to a virtual address become data frames to
// the relay.
//
// # Goroutines
//
// None: relay and client work happens inside ReadFrom and WriteTo, on the
// callers' goroutines, under one mutex. Close closes the wrapped socket.
package relay
