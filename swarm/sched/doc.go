// Package sched is shoal's download scheduler: a pure state machine that
// decides which chunk to ask which peer for, in the style of etcd raft's
// RawNode. It owns no goroutine, channel, socket, clock, logger or global
// random source: penalties and bans come out as actions (Penalise, Ban) and
// the driver logs them, once. The driver (package swarm) feeds it events,
// each carrying the driver's now, and carries out the actions it returns.
//
// # Caller's duties, in order
//
//  1. New(layout, resumeBitmap, cfg, rng), then Ready to collect the first
//     actions (DecodeStripe for stripes complete on disk, maybe Done).
//  2. Report events as they happen: PeerJoined (with the peer's bitmap),
//     Have, ChunkOK (after Merkle verification), ChunkBad, RequestFailed,
//     PeerLeft. After each event (or a batch of them) call Ready, carry out
//     the actions in order and arm a timer for the returned deadline. Do not
//     report events while carrying out a batch of actions (a Request that
//     cannot be sent is reported with RequestFailed after the batch).
//  3. Call Tick(now) when that deadline passes.
//  4. Stop when Done arrives and the requested decodes are finished. With no
//     peers the scheduler simply waits; giving up is the driver's decision.
//
// A request is identified by (peer, chunk): at most one is outstanding for
// a pair. The driver reports one outcome per Request. After a Cancel the
// scheduler has forgotten the request: the driver resets the stream, and if
// a verified chunk still arrives it may report ChunkOK (the chunk counts);
// if a newer request for the same pair is open, that report answers it and
// the driver closes the newer stream.
//
// # Algorithm
//
// Content is a list of chunks in Merkle leaf order, grouped in stripes of
// d_s data chunks and m parity chunks; any d_s verified chunks of a stripe
// rebuild it. A stripe is complete as soon as d_s of its chunks are
// verified: its outstanding requests are cancelled, nothing more is asked
// in it, and if data chunks are missing a DecodeStripe action tells the
// driver to rebuild them.
//
// Rarest first. Each incomplete stripe has a rarity key: first the
// availability of its d_s-th most announced chunk (how many peers could each
// contribute one of the chunks that would rebuild it: the stripe's copies
// in the swarm), then the total number of announcements, then a random
// tie-break drawn at construction, so that downloaders spread over stripes
// that are equally rare. Stripes are kept sorted by key.
//
// Need. A stripe needs d_s - verified - (unverified chunks in flight) more
// requests. When a peer has room in its queue, the scheduler walks the
// stripes rarest first, skips those that need nothing, and takes the least
// announced data chunk the peer has that nobody is fetching (among equally
// announced ones, by a random tie-break drawn per download, so downloaders
// with the same view ask a seeder for different chunks). Data chunks are
// preferred because they need no decoding. If the peer has no such data
// chunk anywhere, it takes a parity chunk in the rarest stripe where it has
// one: this is how parity routes around data chunks that no peer has, or
// that only a slow, busy or saturated peer has. A peer that announced every
// chunk when it joined (a seeder) is not asked for a stripe's parity while
// it deferred the stripe's missing data chunks (Elsewhere): they come from
// the peers it gave them to. The peer that would have
// fetched the data chunk finds the stripe's need covered and moves on.
//
// Endgame. When no stripe needs anything (every remaining need is covered
// by outstanding requests), a peer with room in its queue helps the stripe
// whose oldest request at another peer is oldest, likely stuck at a slow or
// stalled peer. Within that stripe it takes, in order: an unrequested data
// chunk it has, a duplicate of the oldest data request, an unrequested
// parity chunk (the way around a data chunk it does not have), a duplicate
// of a parity request. A stripe's surplus (requests beyond the chunks it
// still needs) stays below MaxDuplicates-1 per chunk other peers are
// fetching, and a chunk has at most MaxDuplicates requests; a peer never
// races its own requests. When a chunk arrives, the other requests for it
// are cancelled; when a stripe completes, all of its requests are.
//
// Queues. Each peer's queue (requests outstanding) starts at InitialQueue
// and grows by one per delivered chunk (slow start: doubling per round
// trip) until it reaches the target the peer's measured rate calls for:
// rate*(QueueTime + the peer's shortest latency seen)/chunk size, at least
// two (the chunk in transfer and the next), at most MaxQueue and the
// per-peer byte cap. The latency term covers the link's round trip;
// QueueTime (200 ms) is the work queued beyond it, short because a request
// for a chunk only that peer holds waits behind it. After slow start the
// queue moves one step per delivery towards that target, so a slow peer
// ends with a queue of two. A timeout or a busy refusal halves the queue;
// a busy refusal also leaves the peer alone for BusyBackoff, doubling with
// each refusal in a row. The rate is a moving average of delivery samples:
// bytes over the time since the previous delivery, or since the request
// was sent if the peer was idle.
//
// Timeouts. A request times out after srtt + 4*rttvar of the peer's
// observed latencies (RFC 6298 style), clamped to [MinTimeout, MaxTimeout]
// and doubled per timeout in a row, but never less than twice the time the
// peer needs at its measured rate for everything queued there. Timed-out
// requests are cancelled and their chunks fetched again. A peer whose last
// request timed out is served last when capacity is scarce.
//
// Caps. Outstanding bytes are capped globally (MaxInflightBytes) and per
// peer (MaxPeerInflightBytes), endgame duplicates included.
//
// Trust. A chunk that fails verification costs its peer trust (Penalise),
// the peer is no longer asked for that chunk, and the chunk is fetched
// again. BanAfter failures in total or BanStreak in a row ban the peer for
// this download: its requests are cancelled, its chunks no longer count,
// and it stays banned if it reconnects.
//
// # Cost
//
// An event costs a few map lookups and, per request it issues, a walk over
// the stripes from the rarest that skips stripes needing nothing and tests
// a peer's candidates in a stripe with a few word operations. Have events
// move one stripe in the order (binary search and a short copy); a peer
// joining or leaving re-sorts it. The steady state allocates nothing. See
// BenchmarkEvent and docs/scheduler.md for figures.
package sched
