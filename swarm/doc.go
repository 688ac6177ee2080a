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
// Every swarm stream is a bidirectional QUIC stream opened by the side that
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
// stream. The downloader may send have messages too; servers check and
// ignore them (this version's downloader sends none after its hello: a
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
//     Server.Seed(id, ItemSource(item)).
//  2. Make a Download with NewDownload(cfg, dialer, store, id, outDir), set
//     cfg.Server so other peers can fetch what it has verified, Run it in a
//     goroutine, AddPeer at any time, and read Progress (or set
//     cfg.OnProgress) for a progress bar.
//  3. Run returns nil when the output is complete and verified, or the
//     context's cause. Close the Download after Run returned (it stops
//     serving it and closes its files); close the Server last, which waits
//     for its handlers.
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
// The scheduler (swarm/sched) caps bytes in flight per peer and in total
// (Config.Sched; the driver's defaults are 8 MiB per peer, 16 MiB in all)
// and every in-flight request holds at most one chunk buffer. The server
// caps concurrent chunk requests per peer and in total (refused as busy)
// and, like the download, can cap its byte rate with a token bucket.
package swarm
