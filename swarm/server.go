package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Source is what the server serves for one content ID: a published item
// (every chunk) or a download in progress (the chunks verified so far).
// Implementations must be safe for concurrent use.
type Source interface {
	// ManifestBytes returns the canonical manifest; callers must not
	// modify it.
	ManifestBytes() []byte
	// LeafBytes returns the encoded leaf layer; callers must not modify it.
	LeafBytes() []byte
	// NumChunks returns the number of chunks, data and parity.
	NumChunks() int
	// ChunkLen returns the exact length of chunk i.
	ChunkLen(i int) int
	// Has reports whether chunk i can be served.
	Has(i int) bool
	// ReadChunk reads chunk i into buf[:ChunkLen(i)] and returns it,
	// verified against its leaf.
	ReadChunk(i int, buf []byte) ([]byte, error)
}

// ServerConfig configures the upload side. The zero value means defaults.
//
// Budgets (docs/security.md): a remote peer can make the server hold
// accepted chunk requests (MaxPerPeer per peer, MaxQueued in all; a
// goroutine and a stream each, no buffer), upload slots (SendPerPeer per
// peer, MaxTotal in all; one chunk buffer each, held only while its bytes
// move: a write that makes no progress for StallTimeout loses the slot) and
// sessions (MaxSessionsPerPeer per peer, MaxSessions in all; a hello buffer
// of at most the content's bitmap, growing with the bytes received, and
// HelloTimeout to send it). Beyond a cap the request is refused as busy and
// counted in ServerCounters.
type ServerConfig struct {
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// MaxPerPeer bounds one peer's accepted chunk requests (being sent or
	// waiting their turn); more are refused as busy. Default 32.
	MaxPerPeer int
	// MaxQueued bounds accepted chunk requests over all peers; more are
	// refused as busy. Default 1024.
	MaxQueued int
	// MaxTotal bounds the chunks being sent at once over all peers (each
	// holds one chunk buffer while it is sent). Requests wait for a slot
	// in arrival order. Default 48.
	MaxTotal int
	// SendPerPeer bounds the chunks written to one peer at once; its other
	// accepted requests wait their turn without holding an upload slot.
	// QUIC interleaves the streams being written, so with every accepted
	// request written at once each chunk would finish only at the end of
	// the whole batch; a few at a time finish one after another, and both
	// ends touch each chunk while it is still in the CPU caches. It is
	// also each peer's fair share: no peer holds more upload slots.
	// Default 2.
	SendPerPeer int
	// UploadRate caps upload bytes per second over all peers; 0: no cap.
	UploadRate int64
	// StallTimeout: a chunk whose next piece (256 KiB; 64 KiB under an
	// UploadRate) cannot be written
	// for this long (the peer does not read) is abandoned, its stream
	// reset and its upload slot freed. Default 5 s.
	StallTimeout time.Duration
	// StallPenalty: after a stalled upload the peer's chunk requests are
	// refused as busy for this long (those already waiting too, before
	// their chunk is read), so a peer that does not read cannot make the
	// server read chunks for nothing. At most MaxStalledPeers are
	// remembered (the oldest is forgotten first). Default 30 s.
	StallPenalty time.Duration
	// WriteTimeout bounds the time to send one whole response. Default
	// 60 s.
	WriteTimeout time.Duration
	// HelloTimeout bounds the time from a stream's start to the end of its
	// request and, for a session, of the peer's hello. Default 10 s.
	HelloTimeout time.Duration
	// MaxSessionsPerPeer bounds one peer's open sessions (one per content
	// it downloads from us); more are refused as busy. Default 32.
	MaxSessionsPerPeer int
	// MaxSessions bounds open sessions over all peers. Default 4096.
	MaxSessions int
	// NoSuperSeed turns super-seeding off: a source that holds every
	// chunk then serves every request as usual. By default it super-seeds
	// (see superseed.go): each chunk goes to one peer as far as it can,
	// and peers that proved they pass chunks on are trusted to serve it.
	NoSuperSeed bool
	// SuperSeedConfirm is how long a chunk written to its first recipient
	// counts as given before that peer announces it; then the claim
	// lapses and the chunk is offered again. Default 5 s.
	SuperSeedConfirm time.Duration
	// SuperSeedHold is how long a peer refused a chunk already given to
	// another peer waits before the chunk is announced to it again; if by
	// then no peer but the first recipient announced it, that peer did not
	// pass it on and the claim is released. Default 15 s.
	SuperSeedHold time.Duration
}

// Server defaults; see ServerConfig.
const (
	DefaultMaxPerPeer         = 32
	DefaultMaxQueued          = 1024
	DefaultMaxTotal           = 48
	DefaultSendPerPeer        = 2
	DefaultStallTimeout       = 5 * time.Second
	DefaultStallPenalty       = 30 * time.Second
	MaxStalledPeers           = 1024
	DefaultWriteTimeout       = 60 * time.Second
	DefaultHelloTimeout       = 10 * time.Second
	DefaultMaxSessionsPerPeer = 32
	DefaultMaxSessions        = 4096
	DefaultSuperSeedConfirm   = 5 * time.Second
	DefaultSuperSeedHold      = 15 * time.Second
)

func (c ServerConfig) populate() ServerConfig {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.MaxPerPeer, DefaultMaxPerPeer)
	def(&c.MaxQueued, DefaultMaxQueued)
	def(&c.MaxTotal, DefaultMaxTotal)
	def(&c.SendPerPeer, DefaultSendPerPeer)
	def(&c.MaxSessionsPerPeer, DefaultMaxSessionsPerPeer)
	def(&c.MaxSessions, DefaultMaxSessions)
	defd(&c.StallTimeout, DefaultStallTimeout)
	defd(&c.StallPenalty, DefaultStallPenalty)
	defd(&c.WriteTimeout, DefaultWriteTimeout)
	defd(&c.HelloTimeout, DefaultHelloTimeout)
	defd(&c.SuperSeedConfirm, DefaultSuperSeedConfirm)
	defd(&c.SuperSeedHold, DefaultSuperSeedHold)
	return c
}

// ServerCounters counts what the server refused or cut off, and how much
// of its budgets is in use.
type ServerCounters struct {
	Accepted        int64 // chunk requests accepted
	BusyPeer        int64 // chunk requests refused: the peer's MaxPerPeer reached
	BusyTotal       int64 // chunk requests refused: MaxQueued reached
	BusyStalled     int64 // chunk requests refused: the peer stalled an upload lately
	Stalled         int64 // chunk uploads abandoned: no progress for StallTimeout
	SessionsRefused int64 // sessions refused: MaxSessionsPerPeer or MaxSessions reached
	BadRequests     int64 // streams reset for a malformed or late request or hello

	Queued   int // chunk requests accepted now (sending or waiting)
	Sending  int // upload slots in use now
	Sessions int // sessions open now
}

// Server is the upload side: it answers swarm streams for the content
// registered with Seed. It is safe for concurrent use.
type Server struct {
	cfg    ServerConfig
	up     *bucket
	ctx    context.Context // ends on Close
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // ServeStream calls and session writers

	slots chan struct{} // a token per chunk being written (MaxTotal)
	clog  *chunkLog

	uploaded atomic.Int64 // chunk payload bytes sent
	served   atomic.Int64 // chunks sent

	ss       ssCounters // super-seeding's
	counters struct {
		accepted, busyPeer, busyTotal, busyStalled, stalled, sessionsRefused, badRequests atomic.Int64
	}

	mu       sync.Mutex // guards the fields below
	closed   bool
	items    map[chunker.ContentID]*served
	perPeer  map[identity.PeerID]*peerUploads
	total    int                           // accepted chunk requests
	sessions int                           // open sessions
	stallers map[identity.PeerID]time.Time // peer -> end of its stall penalty; at most MaxStalledPeers
}

// peerUploads is one peer's accepted chunk requests and open sessions; it
// is dropped when both are zero.
type peerUploads struct {
	n        int           // accepted chunk requests, not yet answered
	sessions int           // open sessions
	turns    chan struct{} // a token per chunk being written (SendPerPeer)
}

// served is one registered source and its open sessions.
type served struct {
	src   Source
	super *superSeed // nil unless src held every chunk when seeded
	mu    sync.Mutex
	// open sessions per peer: super-seeding refuses only a peer it can
	// announce the chunk to again
	peerSessions map[identity.PeerID]int
	sessions     map[*serverSession]struct{}
}

// NewServer returns a server; Close it when done.
func NewServer(cfg ServerConfig) *Server {
	cfg = cfg.populate()
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Server{
		cfg:      cfg,
		up:       newBucket(cfg.UploadRate, 0),
		slots:    make(chan struct{}, cfg.MaxTotal),
		clog:     newChunkLog(cfg.Logger),
		ctx:      ctx,
		cancel:   cancel,
		items:    make(map[chunker.ContentID]*served),
		perPeer:  make(map[identity.PeerID]*peerUploads),
		stallers: make(map[identity.PeerID]time.Time),
	}
}

// Seed starts serving src under id, replacing an earlier source (open
// sessions of the earlier source are closed).
func (s *Server) Seed(id chunker.ContentID, src Source) {
	it := &served{src: src, sessions: make(map[*serverSession]struct{}), peerSessions: make(map[identity.PeerID]int)}
	if !s.cfg.NoSuperSeed && holdsAll(src) {
		it.super = s.newSuperSeed(src.NumChunks(), manifestOf(src))
	}
	s.mu.Lock()
	old := s.items[id]
	s.items[id] = it
	s.mu.Unlock()
	if old != nil {
		old.closeSessions()
	}
}

// Unseed stops serving id; its open sessions are closed. Requests already
// being answered finish.
func (s *Server) Unseed(id chunker.ContentID) {
	s.mu.Lock()
	old := s.items[id]
	delete(s.items, id)
	s.mu.Unlock()
	if old != nil {
		old.closeSessions()
	}
}

// NotifyHave tells the sessions of id that chunk i can now be served. A
// download registered with Seed calls it for every chunk it verifies.
func (s *Server) NotifyHave(id chunker.ContentID, i int) {
	s.mu.Lock()
	it := s.items[id]
	s.mu.Unlock()
	if it == nil {
		return
	}
	it.mu.Lock()
	for ss := range it.sessions {
		ss.queueHave(uint32(i))
	}
	it.mu.Unlock()
}

// Stats returns the chunk payload bytes and chunks the server has sent.
func (s *Server) Stats() (uploadedBytes, chunks int64) {
	return s.uploaded.Load(), s.served.Load()
}

// Counters returns what the server refused or cut off so far.
func (s *Server) Counters() ServerCounters {
	c := ServerCounters{
		Accepted:        s.counters.accepted.Load(),
		BusyPeer:        s.counters.busyPeer.Load(),
		BusyTotal:       s.counters.busyTotal.Load(),
		BusyStalled:     s.counters.busyStalled.Load(),
		Stalled:         s.counters.stalled.Load(),
		SessionsRefused: s.counters.sessionsRefused.Load(),
		BadRequests:     s.counters.badRequests.Load(),
	}
	s.mu.Lock()
	c.Queued, c.Sessions = s.total, s.sessions
	s.mu.Unlock()
	c.Sending = len(s.slots)
	return c
}

// Close stops serving: open streams are reset and Close waits for every
// handler to return. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	items := s.items
	s.items = map[chunker.ContentID]*served{}
	s.mu.Unlock()
	s.cancel(ErrClosed)
	for _, it := range items {
		it.closeSessions()
	}
	s.wg.Wait()
	return nil
}

func (it *served) closeSessions() {
	it.mu.Lock()
	defer it.mu.Unlock()
	for ss := range it.sessions {
		ss.cancel()
	}
}

// ServeStream answers one incoming swarm stream from peer (the overlay has
// read the tag byte). It blocks until the answer is sent, or for a session
// until the session ends, and closes or resets the stream. ctx is the
// connection's context.
func (s *Server) ServeStream(ctx context.Context, peer identity.PeerID, st Stream) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		reset(st, CodeClosing)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	unwatch := watch(ctx, st, CodeClosing)
	defer unwatch()

	// The request must arrive quickly; each kind then sets its own
	// deadline.
	if err := st.SetDeadline(time.Now().Add(s.cfg.HelloTimeout)); err != nil {
		reset(st, CodeClosing)
		return
	}
	req, err := ReadRequest(st)
	if err != nil {
		s.counters.badRequests.Add(1)
		s.clog.debug("bad swarm request", "peer", peer.Short(), "err", err)
		reset(st, CodeProtocol)
		return
	}
	if req.Kind != KindSession {
		if err := st.SetDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil {
			reset(st, CodeClosing)
			return
		}
	}
	s.mu.Lock()
	it := s.items[chunker.ContentID(req.ID)]
	s.mu.Unlock()
	if it == nil {
		s.refuse(st, StatusNotFound, "content not served here")
		return
	}
	switch req.Kind {
	case KindManifest:
		s.sendBlob(st, it.src.ManifestBytes())
	case KindLeaves:
		s.sendBlob(st, it.src.LeafBytes())
	case KindChunk:
		s.serveChunk(ctx, peer, st, chunker.ContentID(req.ID), it, int(req.Index))
	case KindSession:
		s.serveSession(ctx, peer, st, it)
	}
}

// refuse sends an error response and closes the stream.
// The write gets StallTimeout: a peer that does not read cannot hold the
// handler longer.
func (s *Server) refuse(st Stream, status Status, reason string) {
	st.SetDeadline(time.Now().Add(s.cfg.StallTimeout))
	st.Write(AppendError(nil, status, reason))
	st.Close()
	st.CancelRead(CodeCancelled)
}

// sendBlob sends a manifest or leaf layer in pieces, each within
// StallTimeout (a requester that does not read is reset).
func (s *Server) sendBlob(st Stream, b []byte) {
	end := time.Now().Add(s.cfg.WriteTimeout)
	hdr := AppendResponseHeader(make([]byte, 0, responseHeaderLen), StatusOK, uint32(len(b)))
	if err := s.writeStalling(st, hdr, end); err != nil {
		reset(st, CodeCancelled)
		return
	}
	for off := 0; off < len(b); off += stallPiece {
		if err := s.writeStalling(st, b[off:min(off+stallPiece, len(b))], end); err != nil {
			reset(st, CodeCancelled)
			return
		}
	}
	st.Close()
	finishRead(st)
}

// finishRead reads the requester's FIN (it closes its side right after the
// request), so the stream retires without a STOP_SENDING frame; anything
// else stops the read side.
func finishRead(st Stream) {
	var b [1]byte
	if n, err := st.Read(b[:]); n > 0 || !errors.Is(err, io.EOF) {
		st.CancelRead(CodeCancelled)
	}
}

// acquire accepts a chunk request of peer, or reports why not.
func (s *Server) acquire(peer identity.PeerID) (*peerUploads, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total >= s.cfg.MaxQueued {
		s.counters.busyTotal.Add(1)
		return nil, fmt.Sprintf("%d uploads in flight", s.total), false
	}
	if s.stallingLocked(peer) {
		s.counters.busyStalled.Add(1)
		return nil, "you stopped reading", false
	}
	pu := s.peerLocked(peer)
	if pu.n >= s.cfg.MaxPerPeer {
		s.counters.busyPeer.Add(1)
		return nil, fmt.Sprintf("%d requests from you in flight", pu.n), false
	}
	s.total++
	pu.n++
	s.counters.accepted.Add(1)
	return pu, "", true
}

func (s *Server) release(peer identity.PeerID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if pu := s.perPeer[peer]; pu != nil {
		pu.n--
		s.dropIdleLocked(peer, pu)
	}
}

// peerLocked returns peer's record, creating it.
func (s *Server) peerLocked(peer identity.PeerID) *peerUploads {
	pu := s.perPeer[peer]
	if pu == nil {
		pu = &peerUploads{turns: make(chan struct{}, s.cfg.SendPerPeer)}
		s.perPeer[peer] = pu
	}
	return pu
}

func (s *Server) dropIdleLocked(peer identity.PeerID, pu *peerUploads) {
	if pu.n <= 0 && pu.sessions <= 0 {
		delete(s.perPeer, peer)
	}
}

// stallingLocked reports whether peer is serving a stall penalty.
func (s *Server) stallingLocked(peer identity.PeerID) bool {
	until, ok := s.stallers[peer]
	if ok && time.Now().After(until) {
		delete(s.stallers, peer)
		return false
	}
	return ok
}

// stalling reports whether peer is serving a stall penalty.
func (s *Server) stalling(peer identity.PeerID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stallingLocked(peer)
}

// penalise starts a stall penalty for peer. When MaxStalledPeers are
// remembered, expired entries are dropped, then the one ending first.
func (s *Server) penalise(peer identity.PeerID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if _, ok := s.stallers[peer]; !ok && len(s.stallers) >= MaxStalledPeers {
		var first identity.PeerID
		var firstEnd time.Time
		for p, end := range s.stallers {
			if now.After(end) {
				delete(s.stallers, p)
			} else if firstEnd.IsZero() || end.Before(firstEnd) {
				first, firstEnd = p, end
			}
		}
		if len(s.stallers) >= MaxStalledPeers {
			delete(s.stallers, first)
		}
	}
	s.stallers[peer] = now.Add(s.cfg.StallPenalty)
}

// acquireSession admits a session of peer, or reports false.
func (s *Server) acquireSession(peer identity.PeerID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	pu := s.peerLocked(peer)
	if s.sessions >= s.cfg.MaxSessions || pu.sessions >= s.cfg.MaxSessionsPerPeer {
		s.counters.sessionsRefused.Add(1)
		s.dropIdleLocked(peer, pu)
		return false
	}
	s.sessions++
	pu.sessions++
	return true
}

func (s *Server) releaseSession(peer identity.PeerID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions--
	if pu := s.perPeer[peer]; pu != nil {
		pu.sessions--
		s.dropIdleLocked(peer, pu)
	}
}

// serveChunk answers a chunk request. The request is accepted (or refused
// as busy) at once; it then waits for the peer's turn (SendPerPeer) and an
// upload slot (MaxTotal) without holding anything else, reads the chunk and
// writes it in pieces. A piece that cannot be written within StallTimeout
// ends the upload: a peer that does not read loses its slot quickly.
func (s *Server) serveChunk(ctx context.Context, peer identity.PeerID, st Stream, id chunker.ContentID, it *served, i int) {
	src := it.src
	if i < 0 || i >= src.NumChunks() {
		s.refuse(st, StatusBadRequest, fmt.Sprintf("chunk %d of %d", i, src.NumChunks()))
		return
	}
	if !src.Has(i) {
		s.refuse(st, StatusNotHave, fmt.Sprintf("chunk %d not held", i))
		return
	}
	if it.super != nil {
		if no, gen := it.super.refuseEarly(peer, i, it.hasSession(peer)); no {
			s.refuse(st, StatusElsewhere, fmt.Sprintf("chunk %d went to another peer: ask the peers", i))
			s.holdLater(it, i, gen)
			return
		}
	}
	pu, why, ok := s.acquire(peer)
	if !ok {
		s.refuse(st, StatusBusy, why)
		return
	}
	defer s.release(peer)
	select { // wait for this peer's turn to be written to
	case pu.turns <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-pu.turns }()
	select { // and for an upload slot
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-s.slots }()
	if s.stalling(peer) {
		// The peer stalled while this request waited: read nothing for
		// it, and do not wait on its flow control while holding a slot.
		s.counters.busyStalled.Add(1)
		reset(st, CodeCancelled)
		return
	}
	// Super-seeding decides when the chunk is about to be written, not when
	// the request arrives: requests waiting for a turn claim nothing.
	sent := false
	if it.super != nil {
		dec, gen := it.super.claim(peer, i, it.hasSession(peer))
		switch dec {
		case ssRefuse:
			s.refuse(st, StatusElsewhere, fmt.Sprintf("chunk %d went to another peer: ask the peers", i))
			s.holdLater(it, i, gen)
			return
		case ssClaimed:
			defer func() {
				if sent {
					it.super.sent(i, gen)
					s.confirmLater(it, i, gen)
				} else {
					it.announce(it.super.failed(i, gen), i)
				}
			}()
		}
	}
	bp := getBuf(src.ChunkLen(i))
	defer putBuf(bp)
	data, err := src.ReadChunk(i, *bp)
	if err != nil {
		s.clog.warn("cannot serve chunk", "content", id.String(), "chunk", i, "err", err)
		s.refuse(st, StatusInternal, "cannot read chunk")
		return
	}
	end := time.Now().Add(s.cfg.WriteTimeout)
	hdr := AppendResponseHeader(make([]byte, 0, responseHeaderLen), StatusOK, uint32(len(data)))
	if err := s.writeStalling(st, hdr, end); err != nil {
		s.stalled(st, peer, id, i, err)
		return
	}
	piece := stallPiece
	if s.up != nil {
		piece = sendPiece
	}
	for off := 0; off < len(data); off += piece {
		p := data[off:min(off+piece, len(data))]
		if err := s.up.wait(ctx, len(p)); err != nil {
			return
		}
		if err := s.writeStalling(st, p, end); err != nil {
			s.stalled(st, peer, id, i, err)
			return
		}
	}
	sent = st.Close() == nil
	finishRead(st)
	s.uploaded.Add(int64(len(data)))
	s.served.Add(1)
}

// manifestOf returns src's manifest, nil if it does not decode to one of
// src's chunk count.
func manifestOf(src Source) *chunker.Manifest {
	if cs, ok := src.(*chunkerSource); ok {
		return cs.man
	}
	m, err := chunker.DecodeManifest(src.ManifestBytes())
	if err != nil || m.NumChunks() != src.NumChunks() {
		return nil
	}
	return m
}

// holdsAll reports whether src can serve every chunk.
func holdsAll(src Source) bool {
	for i := range src.NumChunks() {
		if !src.Has(i) {
			return false
		}
	}
	return true
}

// writeStalling writes p with a deadline of StallTimeout from now (but not
// past end).
func (s *Server) writeStalling(st Stream, p []byte, end time.Time) error {
	dl := time.Now().Add(s.cfg.StallTimeout)
	if dl.After(end) {
		dl = end
	}
	if err := st.SetDeadline(dl); err != nil {
		return err
	}
	_, err := st.Write(p)
	return err
}

// stalled ends an upload whose write failed (the peer stopped reading, or
// went away).
func (s *Server) stalled(st Stream, peer identity.PeerID, id chunker.ContentID, i int, err error) {
	reset(st, CodeCancelled)
	if os.IsTimeout(err) {
		s.penalise(peer)
		s.counters.stalled.Add(1)
		s.clog.debug("upload stalled", "peer", peer.Short(), "content", id.String(), "chunk", i, "err", err)
	}
}
