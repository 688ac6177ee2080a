// Package overlay owns a shoal node's network presence: one UDP socket
// carrying QUIC connections to peers, mutually authenticated by their
// identity keys, and, beside QUIC on the same socket, the non-QUIC
// datagrams of the IPv8 layer (package overlay/ipv8).
//
// # Socket
//
// A Node binds one UDP socket (or takes Config.PacketConn) and hands it to
// a quic-go Transport, which owns it from then on. Every packet whose first
// byte has the QUIC fixed bit (0x40) clear and is not a long header goes to
// the datagram side; the node delivers those starting with 0x00 to the
// datagram handler (the IPv8 Endpoint, unless Config.OnDatagram or
// SetDatagramHandler replace it) and drops the rest. WriteDatagram sends a packet that must start with 0x00. quic-go
// never greases the fixed bit (it has no option to), so QUIC packets always
// have 0x40 set and the two never mix.
//
// # Authentication
//
// Each node makes a self-signed X.509 certificate from its Ed25519 key at
// start. Besides the usual fields it carries the node's whole 74-byte
// public key (IPv8's LibNaCLPK form, which includes the X25519 half) as a
// URI subject alternative name:
//
//	certificate (self-signed, Ed25519)
//	+-------------------------------------------------------------+
//	| subject CN   "shoal <first 12 hex digits of the PeerID>"    |
//	| public key   Ed25519, 32 bytes                              |
//	| URI SAN      "shoal-pk:" + hex(74-byte public key)          |
//	|              = "LibNaCLPK:" | X25519 (32) | Ed25519 (32)    |
//	| signature    Ed25519 over the TBS part, by the same key     |
//	+-------------------------------------------------------------+
//
// A certificate is accepted when it is the only one presented, its key is
// Ed25519, its self-signature verifies, it carries exactly one shoal-pk
// URI, and that key's Ed25519 half equals the certificate's key. The
// peer's PeerID is BLAKE3-256 of the 74-byte key (package identity).
// Validity dates are not checked. TLS 1.3 proves the peer holds the
// Ed25519 private key; there is no CA. Both sides present certificates
// (the server requires one). A dial names the PeerID it expects, and a
// peer answering with another key fails the handshake with ErrWrongPeer;
// a zero PeerID accepts any valid peer (bootstrap by address).
//
// The TLS ALPN is "shoal/1" (the constant ALPN): the protocol and the
// version of the stream layer below. A peer offering anything else fails
// the handshake.
//
// # Connections
//
// One connection per pair of peers carries every stream between them.
// Concurrent dials to one peer at one address share one attempt. When both
// peers dial each other at once (or a peer restarted), new streams go to
// the connection dialled by the smaller PeerID (byte-wise; the newest among
// equals); the others keep the streams already on them for
// Config.DuplicateGrace and are then closed with CodeDuplicate.
// Connections close after Config.IdleTimeout without packets (unless
// Config.KeepAlive is set). Config.MaxConns caps open connections plus
// dials and incoming handshakes in progress: a dial beyond it fails with
// ErrConnLimit. Incoming handshakes are refused with QUIC's
// CONNECTION_REFUSED (the dialling side reports ErrRefused), before any
// state is spent, beyond MaxConns-DialReserve (the reserve is for our own
// dials), MaxConnsPerIP, MaxHandshakes or MaxHandshakesPerIP; at
// MaxHandshakes, a handshake from an address holding two fewer than
// another ends that address's oldest one instead (a fair share per
// address); above RetryAbove handshakes in progress a new one must first
// answer a QUIC Retry; a connection beyond MaxConnsPerPeer for one identity is closed
// after its handshake. Each refusal is counted by reason in Stats
// (docs/overlay.md, "Connection budgets").
//
// # Streams
//
// Higher layers use bidirectional QUIC streams. The opener writes one tag
// byte first, naming the protocol that runs on the stream:
//
//	stream
//	+---------+----------------------------------------+
//	| tag (1) | protocol bytes, defined by the tag's   |
//	|         | owner (swarm, DHT, ...)                |
//	+---------+----------------------------------------+
//
// Handle registers a Handler per tag. A stream whose tag has no handler is
// reset with StreamCodeUnknownTag; one that sends no tag within
// Config.TagTimeout is reset with StreamCodeNoTag. Tag values are assigned
// by their users (seed wires them); overlay reserves none.
//
// # TCP
//
// With Config.TCP the node also listens on TCP at its UDP address and
// port. Bulk streams (OpenBulkStream; the swarm's chunk streams) move to
// it once a session to the peer is up; the node dials it in the
// background to the address its QUIC connection reached and leaves an
// address whose TCP dial failed alone for a minute. The layers:
//
//	TCP
//	TLS 1.3    the QUIC certificate and checks (above), ALPN "shoal-tcp/1"
//	yamux      github.com/libp2p/go-yamux/v5 framing (its spec.md):
//	           12-byte header: version (0), type, flags u16, stream ID u32,
//	           length u32; streams opened by the dialler are odd
//	stream     | tag (1) | protocol bytes | as on QUIC
//
// Close closes a stream's write side (yamux FIN); CancelRead and
// CancelWrite reset the whole stream (yamux RST) carrying the QUIC error
// code. The decoders on this path are crypto/tls's and yamux's. Budgets:
// the connection caps of Config apply to TCP sessions and handshakes
// separately from QUIC's; a session takes at most 128 incoming streams,
// and a MemoryManager holds the growth of each session's receive windows
// to MaxConnWindow and all sessions' to MaxTCPBuffer (docs/overlay.md,
// "TCP").
//
// # Goroutines
//
// New starts no goroutine. Run starts the first four below and returns
// only after every one of them has exited; Close waits for them too:
//   - the accept loop (one), registering incoming connections;
//   - the datagram reader (one), copying each 0x00 packet into a queue of
//     1,024 (full: dropped, counted in Stats.DatagramsDropQueue), so that
//     quic-go's 32-packet buffer drains fast;
//   - the datagram deliverer (one), calling the datagram handler (by
//     default the IPv8 Endpoint's HandlePacket, so community handlers run
//     here) in arrival order;
//   - the IPv8 Endpoint's housekeeping (one, Endpoint.Run);
//   - per connection, one stream acceptor;
//   - per incoming stream, one handler goroutine, bounded by
//     Config.MaxIncomingStreams per connection;
//   - per dial in progress, one dialler.
//   - with TCP: the TCP accept loop (one), per incoming TLS handshake one
//     goroutine (bounded by MaxHandshakes), per session one stream
//     acceptor, one idle watch and yamux's reader, writer and keep-alive,
//     per incoming stream one handler goroutine, per background dial one.
//
// quic-go runs its own goroutines under the Transport; Close closes the
// Transport, which waits for them. Peer events (Config.OnPeer) run on
// whichever of these goroutines caused them, one at a time and in order.
//
// # Datagrams and IPv8
//
// Node.Endpoint is the node's IPv8 endpoint (package overlay/ipv8): it
// sends through WriteDatagram and receives every 0x00 packet unless
// Config.OnDatagram or SetDatagramHandler installs another handler.
// Communities register on it.
//
// # Caller's duties
//
//  1. New (binds the socket, starts nothing), then Handle for each tag and
//     register IPv8 communities before peers may reach the node.
//  2. Run(ctx) on a goroutine the caller waits for (the lifecycle of
//     docs/architecture.md): it accepts connections and datagrams until
//     ctx ends, then closes every connection and returns.
//  3. Dial / OpenStream as needed; close or reset every stream opened.
//  4. Close once after Run returned (or instead of cancelling Run's ctx): it
//     releases the socket.
//
// Package overlay imports only overlay/identity, package ratelimit and its
// own sub-packages (overlay/internal/udpbatch: batched UDP I/O).
package overlay
