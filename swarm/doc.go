// Package swarm moves content between peers: the transfer protocol over QUIC
// streams, the download driver around the scheduler core in swarm/sched, and
// the upload side.
//
// # What it owns and what it must not do
//
// swarm owns the byte layout of every swarm stream, the goroutines and
// timers of a download, and the limits of the upload side. It verifies every
// byte it accepts (manifest against the content ID, leaf layer against the
// Merkle root, chunks against their leaf, through package chunker) and never
// writes unverified bytes to an output. It does not own sockets: it reaches
// the network through the Dialer interface (open a stream to a peer) and gets
// incoming streams through Server.ServeStream. Package overlay satisfies the
// first and calls the second; package seed wires them. swarm imports only
// chunker and overlay/identity of our packages.
//
// # Streams
//
// Every swarm stream is a bidirectional stream (QUIC, or yamux over TLS on
// TCP: the overlay picks, the bytes are the same) opened by the side that
// wants something (the requester). The overlay writes its one-byte protocol
// tag before anything below and strips it before ServeStream. All integers
// are big-endian.
//
// Request (requester to server, first bytes of every stream):
//
//	+---------+------+------------------+-------------------------+
//	| version | kind | content ID (32)  | chunk index u32         |
//	|  (=1)   |      |                  | (kind 4 only)           |
//	+---------+------+------------------+-------------------------+
//
//	kind 1 session   a control stream (see below)
//	kind 2 manifest  the manifest bytes
//	kind 3 leaves    the leaf layer: 32 bytes per chunk in chunk order
//	kind 4 chunk     the bytes of one chunk (unpadded)
//
// Response (server to requester, first bytes of the answer):
//
//	+--------+-------------+--------------------------------------+
//	| status | length u32  | payload (length bytes)               |
//	+--------+-------------+--------------------------------------+
//
//	status 0 ok           payload: manifest, leaf layer or chunk
//	                      (nothing for a session; messages follow)
//	status 1 not found    the server does not know the content ID
//	status 2 busy         too many requests in flight; try later/elsewhere
//	status 3 bad request  malformed request, chunk index out of range
//	status 4 not have     the server does not hold that chunk (yet)
//	status 5 internal     the server could not read its own data
//	status 6 elsewhere    the server holds the chunk but gave it to another
//	                      peer already (super-seeding): fetch it from the
//	                      peers, and ask again if none serves it
//
// For every status but ok the payload is a UTF-8 reason of at most 255
// bytes. After a manifest, leaves or chunk response the server closes its
// side. The requester checks the length before reading: a manifest is at
// most 8 MiB and must hash to the content ID; a leaf layer is exactly 32
// bytes per chunk of the verified manifest and must hash to its Merkle root;
// a chunk is exactly the length the manifest gives and must match its leaf.
// A requester cancels a request by resetting the stream in both directions
// with code 0x5301 (cancelled); 0x5302 means the sender is shutting down and
// 0x5303 that the peer broke the protocol.
//
// # Sessions
//
// A session is one long-lived control stream per (connection, content),
// opened by the downloader. After the request the downloader sends a hello
// and the server answers with a response header (status, length 0) and its
// own hello; after that the server sends have messages as it verifies
// chunks (a server that is itself downloading), until either side closes the
// stream. The downloader sends have messages too, for the chunks it
// verifies, on sessions whose server said "all" in its hello: a
// super-seeding server learns from them which of its chunks arrived and
// which went on to other peers; other servers check and ignore them (a
// leecher that wants another leecher's chunks opens its own session). A
// session's end does not end the connection. Messages:
//
//	+------+------------+------------------------------------------+
//	| type | length u32 | body (length bytes)                      |
//	+------+------------+------------------------------------------+
//
//	type 1 hello: | flags u8 | chunk count u32 | bitmap ...        |
//	       flags bit 0 "all": the sender holds every chunk and no
//	       bitmap follows; otherwise the bitmap has ceil(count/8)
//	       bytes, chunk i is bit 1<<(i%8) of byte i/8, spare bits 0.
//	       count is at most 2^22.
//	type 2 have:  | chunk index u32 | ... (1 to 4096 of them)
//
// Unknown types, lengths beyond the limits, set spare bits and trailing
// bytes are protocol errors: the stream is reset with 0x5303.
//
// # The caller's duties, in order
//
//  1. Make a Server with NewServer and route incoming swarm streams (tag
//     Tag) to Server.ServeStream; serve published items with
//     Server.Seed(id, ItemSource(item)). The Server starts nothing; Close
//     it last (idempotent; it waits for its handlers).
//  2. Make a Download with NewDownload(cfg, dialer, store, id, outDir): it
//     validates its arguments and starts nothing. Set cfg.Server so other
//     peers can fetch what it has verified. AddPeer at any time (before or
//     during Run), from any goroutine.
//  3. Call Run(ctx) once, on a goroutine of yours: it owns every goroutine
//     of the download and returns after all of them exited. It returns nil
//     when the output is complete, verified and synced and the parity it
//     did not fetch is re-encoded (unless cfg.SkipParity), so the download
//     serves every chunk; ctx's cause when ctx ends; ErrClosed after Close;
//     or the error that stopped it (a failing disk).
//  4. Read Progress (or set cfg.OnProgress) for a progress bar.
//  5. Close the Download (idempotent; it stops a Run still going and waits
//     for it): it stops serving the download and closes its files.
//
// # Reading while downloading
//
// Download.NewReader (after Download.Manifest) reads a byte range while the
// download runs: it focuses the scheduler on the chunks it needs (urgent
// while it waits) and returns only verified bytes; Close releases its focus.
// SetOnDemand makes the download fetch only what readers focus; Pause,
// Resume and SetRateLimit steer one download. docs/gateway.md explains it.
//
// # Limits
//
// Every resource a remote peer can make a node hold has a per-peer cap, a
// global cap, an overflow policy and a counter (docs/security.md, "Swarm
// and store"):
//
//   - Download: bytes in flight (sched: 8 MiB per peer, 16 MiB in all;
//     each request holds one pooled chunk buffer); known peers (MaxPeers,
//     1024; more are dropped, Progress.PeersDropped); sessions
//     (MaxSessions, 64, run at once; the other known peers wait in a
//     queue, one entry each; a session that ends gives up its slot and
//     its peer waits again, not before 250 ms doubling to 5 s while its
//     sessions fail, to 30 s while more peers are known than slots; a
//     free slot goes to the ready peer with the fewest
//     sessions without a verified chunk since its last useful one; while
//     a peer is ready and every slot is taken, a session with no verified
//     chunk for SessionIdle, 5 s (EmptySessionIdle, 500 ms, if its peer
//     joined announcing no chunk and has announced none since), yields
//     its slot; Progress.Sessions,
//     SessionsPeak, SessionsWaiting, SessionsYielded); metadata fetches
//     (ManifestParallel 8 asked for the manifest at once, MetaParallel 3
//     for the leaf layer, in the order their manifests were verified; a
//     fetch silent for MetaIdle, 25 ms, or longer on a slow link (4x the
//     connection's round trip, PeerRTT, else 2x its stream open; 4x its
//     wait for a first answer) stops counting and lets one more peer be
//     asked, one older than MetaHedge, 2 s, stops counting; MaxMetaFetches
//     32 in flight, the longest-silent cancelled for a waiting peer; each
//     within MetaTimeout 20 s; a failed peer is asked again after 0.5 s
//     doubling to 30 s; Progress.MetaFetches, MetaSilent, MetaEvicted); a
//     manifest or leaf layer buffer grows
//     only with the bytes received; a peer serving bad metadata or bad
//     chunks is banned for the download (Progress.Banned).
//   - Server: accepted chunk requests (MaxPerPeer 32, MaxQueued 1024;
//     refused as busy); upload slots, one chunk buffer each, held only
//     while the chunk's bytes move (SendPerPeer 2, MaxTotal 48; a piece
//     not written within StallTimeout, 5 s, resets the stream); sessions
//     (MaxSessionsPerPeer 32, MaxSessions 4096; refused as busy); the
//     request and a session's hello within HelloTimeout (10 s), a hello no
//     longer than the content's bitmap (checked from its header), its
//     buffer growing with the bytes received. Server.Counters counts each
//     refusal and cut-off.
//   - Super-seeding (a server seeding a complete item; ServerConfig.
//     NoSuperSeed turns it off): per item 33 bytes per chunk, at most 1,024
//     peers tracked and 256 refused (one bit per chunk each), per peer at
//     most 16 chunks claimed and not yet announced and 64 announced and not
//     passed on; beyond them plain seeding. Server.SuperSeedCounters
//     counts its decisions (superseed.go).
//   - Both can cap their byte rate with a token bucket.
//
// # Logging
//
// Drivers log, the scheduler core does not: constant messages with the
// attributes peer, content, chunk and err. A ban is logged once at Warn;
// per-chunk events (a bad chunk, a stalled upload, a failed metadata
// fetch) at Debug, at most 10 a second (the rest are counted in the next
// message's "suppressed").
package swarm
