package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
type ServerConfig struct {
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// MaxPerPeer bounds concurrent chunk requests per peer; more are
	// refused as busy. Default 32.
	MaxPerPeer int
	// MaxTotal bounds concurrent chunk requests over all peers (each holds
	// one chunk buffer while it is sent). Default 48.
	MaxTotal int
	// SendPerPeer bounds the chunks written to one peer at once; its other
	// accepted requests wait their turn. QUIC interleaves the streams
	// being written, so with every accepted request written at once each
	// chunk would finish only at the end of the whole batch; a few at a
	// time finish one after another, and both ends touch each chunk while
	// it is still in the CPU caches. Default 2.
	SendPerPeer int
	// UploadRate caps upload bytes per second over all peers; 0: no cap.
	UploadRate int64
	// WriteTimeout bounds the time to send one response. Default 60 s.
	WriteTimeout time.Duration
}

func (c ServerConfig) populate() ServerConfig {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxPerPeer <= 0 {
		c.MaxPerPeer = 32
	}
	if c.MaxTotal <= 0 {
		c.MaxTotal = 48
	}
	if c.SendPerPeer <= 0 {
		c.SendPerPeer = 2
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 60 * time.Second
	}
	return c
}

// Server is the upload side: it answers swarm streams for the content
// registered with Seed. It is safe for concurrent use.
type Server struct {
	cfg    ServerConfig
	up     *bucket
	ctx    context.Context // ends on Close
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // ServeStream calls and session writers

	uploaded atomic.Int64 // chunk payload bytes sent
	served   atomic.Int64 // chunks sent

	mu      sync.Mutex // guards the fields below
	closed  bool
	items   map[chunker.ContentID]*served
	perPeer map[identity.PeerID]*peerUploads
	total   int
}

// peerUploads is one peer's accepted chunk requests.
type peerUploads struct {
	n     int           // accepted, not yet answered
	turns chan struct{} // a token per chunk being written (SendPerPeer)
}

// served is one registered source and its open sessions.
type served struct {
	src      Source
	mu       sync.Mutex
	sessions map[*serverSession]struct{}
}

// NewServer returns a server; Close it when done.
func NewServer(cfg ServerConfig) *Server {
	cfg = cfg.populate()
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Server{
		cfg:     cfg,
		up:      newBucket(cfg.UploadRate, 0),
		ctx:     ctx,
		cancel:  cancel,
		items:   make(map[chunker.ContentID]*served),
		perPeer: make(map[identity.PeerID]*peerUploads),
	}
}

// Seed starts serving src under id, replacing an earlier source (open
// sessions of the earlier source are closed).
func (s *Server) Seed(id chunker.ContentID, src Source) {
	s.mu.Lock()
	old := s.items[id]
	s.items[id] = &served{src: src, sessions: make(map[*serverSession]struct{})}
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

	if err := st.SetDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil {
		reset(st, CodeClosing)
		return
	}
	req, err := ReadRequest(st)
	if err != nil {
		s.cfg.Logger.Debug("bad swarm request", "peer", peer.Short(), "err", err)
		reset(st, CodeProtocol)
		return
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
		s.serveChunk(ctx, peer, st, it.src, int(req.Index))
	case KindSession:
		s.serveSession(ctx, peer, st, it)
	}
}

// refuse sends an error response and closes the stream.
func (s *Server) refuse(st Stream, status Status, reason string) {
	st.Write(AppendError(nil, status, reason))
	st.Close()
	st.CancelRead(CodeCancelled)
}

func (s *Server) sendBlob(st Stream, b []byte) {
	hdr := AppendResponseHeader(make([]byte, 0, responseHeaderLen), StatusOK, uint32(len(b)))
	if _, err := st.Write(hdr); err != nil {
		return
	}
	if _, err := st.Write(b); err != nil {
		return
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

// acquire takes an upload slot for peer, or reports why not.
func (s *Server) acquire(peer identity.PeerID) (*peerUploads, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total >= s.cfg.MaxTotal {
		return nil, fmt.Sprintf("%d uploads in flight", s.total), false
	}
	pu := s.perPeer[peer]
	if pu == nil {
		pu = &peerUploads{turns: make(chan struct{}, s.cfg.SendPerPeer)}
		s.perPeer[peer] = pu
	}
	if pu.n >= s.cfg.MaxPerPeer {
		return nil, fmt.Sprintf("%d requests from you in flight", pu.n), false
	}
	s.total++
	pu.n++
	return pu, "", true
}

func (s *Server) release(peer identity.PeerID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if pu := s.perPeer[peer]; pu != nil {
		if pu.n--; pu.n <= 0 {
			delete(s.perPeer, peer)
		}
	}
}

func (s *Server) serveChunk(ctx context.Context, peer identity.PeerID, st Stream, src Source, i int) {
	if i < 0 || i >= src.NumChunks() {
		s.refuse(st, StatusBadRequest, fmt.Sprintf("chunk %d of %d", i, src.NumChunks()))
		return
	}
	if !src.Has(i) {
		s.refuse(st, StatusNotHave, fmt.Sprintf("chunk %d not held", i))
		return
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
	bp := getBuf(src.ChunkLen(i))
	defer putBuf(bp)
	data, err := src.ReadChunk(i, *bp)
	if err != nil {
		s.cfg.Logger.Warn("cannot serve chunk", "chunk", i, "err", err)
		s.refuse(st, StatusInternal, "cannot read chunk")
		return
	}
	hdr := AppendResponseHeader(make([]byte, 0, responseHeaderLen), StatusOK, uint32(len(data)))
	if _, err := st.Write(hdr); err != nil {
		return
	}
	piece := len(data) // unlimited: one write per chunk
	if s.up != nil {
		piece = sendPiece
	}
	for off := 0; off < len(data); off += piece {
		p := data[off:min(off+piece, len(data))]
		if err := s.up.wait(ctx, len(p)); err != nil {
			return
		}
		if _, err := st.Write(p); err != nil {
			return
		}
	}
	st.Close()
	finishRead(st)
	s.uploaded.Add(int64(len(data)))
	s.served.Add(1)
}
