package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

// request opens a stream to peer, sends req and ends the send side. The
// stream is reset when ctx ends until stop is called.
func openRequest(ctx context.Context, d Dialer, peer identity.PeerID, addr netip.AddrPort, req Request) (Stream, func() bool, error) {
	st, err := d.OpenStream(ctx, peer, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s stream to %s: %w", req.Kind, peer.Short(), err)
	}
	stop := watch(ctx, st, CodeCancelled)
	var buf [chunkRequestLen]byte
	if _, err := st.Write(AppendRequest(buf[:0], req)); err != nil {
		stop()
		reset(st, CodeCancelled)
		return nil, nil, fmt.Errorf("sending %s request: %w", req.Kind, err)
	}
	if req.Kind != KindSession {
		st.Close()
	}
	return st, stop, nil
}

// FetchMeta fetches the manifest and the leaf layer of id from peer and
// verifies them: the manifest against the content ID, the leaves against its
// Merkle root. Errors wrapping ErrBadData mean the peer lied.
func FetchMeta(ctx context.Context, d Dialer, peer identity.PeerID, addr netip.AddrPort, id chunker.ContentID) (*chunker.Manifest, *chunker.LeafLayer, error) {
	return fetchMeta(ctx, d, peer, addr, id, nil)
}

// fetchMeta is FetchMeta reporting the bytes' arrival to w (if not nil).
func fetchMeta(ctx context.Context, d Dialer, peer identity.PeerID, addr netip.AddrPort, id chunker.ContentID, w *metaWatch) (*chunker.Manifest, *chunker.LeafLayer, error) {
	enc, err := fetchBlob(ctx, d, peer, addr, Request{Kind: KindManifest, ID: id}, 1, MaxManifestSize, w)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching manifest: %w", err)
	}
	if chunker.IDOf(enc) != id {
		return nil, nil, fmt.Errorf("manifest from %s: %w: hash is not the content ID", peer.Short(), ErrBadData)
	}
	m, err := chunker.DecodeManifest(enc)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest from %s: %w: %w", peer.Short(), ErrBadData, err)
	}
	if err := w.waitTurn(ctx); err != nil {
		return nil, nil, fmt.Errorf("waiting to ask for the leaf layer: %w", err)
	}
	n := 32 * m.NumChunks()
	raw, err := fetchBlob(ctx, d, peer, addr, Request{Kind: KindLeaves, ID: id}, n, n, w)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching leaves: %w", err)
	}
	leaves, err := chunker.DecodeLeaves(raw, m)
	if err != nil {
		return nil, nil, fmt.Errorf("leaves from %s: %w: %w", peer.Short(), ErrBadData, err)
	}
	return m, leaves, nil
}

// fetchBlob runs a manifest or leaves request; the length is checked
// against [minLen, maxLen], and memory grows only with the bytes that
// actually arrive (a peer that announces 8 MiB and sends nothing costs
// nothing). w, if not nil, learns when the request is sent and when the
// response's bytes arrive.
func fetchBlob(ctx context.Context, d Dialer, peer identity.PeerID, addr netip.AddrPort, req Request, minLen, maxLen int, w *metaWatch) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if w != nil {
		w.opening.Store(true)
	}
	t0 := time.Now()
	st, stop, err := openRequest(ctx, d, peer, addr, req)
	if err != nil {
		return nil, err
	}
	defer stop()
	w.opened(time.Since(t0))
	n, err := readResponse(st, minLen, maxLen)
	if err != nil {
		reset(st, CodeCancelled)
		return nil, err
	}
	w.answered()
	var r io.Reader = st
	if w != nil {
		r = watchedReader{st, w}
	}
	b, err := readGrowing(r, n)
	if err != nil {
		reset(st, CodeCancelled)
		return nil, fmt.Errorf("reading %d-byte %s: %w", n, req.Kind, err)
	}
	return b, nil
}

// metaWatch is what a download's metadata fetch (fetchMeta) tells the
// download about its progress, so that a peer that goes silent (answers
// "ok, N bytes" and then nothing, or never answers a request it accepted)
// can be told from one that is sending, and how the download paces the
// leaf layer requests. Its methods are safe on a nil *metaWatch (no-ops)
// and from any goroutine.
type metaWatch struct {
	opening atomic.Bool  // dialing or opening a request stream
	last    atomic.Int64 // Unix ns: request sent, or header or body bytes arrived
	sent    atomic.Int64 // Unix ns: the last request sent
	dial    atomic.Int64 // ns: the longest stream open so far (about one round trip or more)
	wait    atomic.Int64 // ns: the longest wait from a request to its answer's first bytes
	rttNs   atomic.Int64 // ns: the connection's round trip when the last stream opened

	poke func()                          // called when a request is sent (may be nil)
	rtt  func() time.Duration            // the connection's round trip (may be nil)
	turn func(ctx context.Context) error // waits for the leaf layer's turn (may be nil)
}

func (w *metaWatch) opened(took time.Duration) {
	if w == nil {
		return
	}
	if int64(took) > w.dial.Load() {
		w.dial.Store(int64(took))
	}
	if w.rtt != nil {
		w.rttNs.Store(int64(w.rtt()))
	}
	now := time.Now().UnixNano()
	w.sent.Store(now)
	w.last.Store(now)
	w.opening.Store(false)
	if w.poke != nil {
		w.poke()
	}
}

// answered notes the first bytes of an answer (its header).
func (w *metaWatch) answered() {
	if w == nil {
		return
	}
	now := time.Now().UnixNano()
	if d := now - w.sent.Load(); d > w.wait.Load() {
		w.wait.Store(d)
	}
	w.last.Store(now)
}

func (w *metaWatch) arrived() {
	if w != nil {
		w.last.Store(time.Now().UnixNano())
	}
}

// waitTurn waits until the download lets this fetch ask for the leaf
// layer.
func (w *metaWatch) waitTurn(ctx context.Context) error {
	if w == nil || w.turn == nil {
		return nil
	}
	return w.turn(ctx)
}

// silentAt returns when the fetch counts as silent if nothing more
// arrives: after the request was sent or the last bytes arrived, idle or
// longer on a slow link (four times the connection's round trip, or twice
// the longest stream open where the round trip is unknown; four times its
// longest wait for an answer). It returns false while a stream is being
// opened.
func (w *metaWatch) silentAt(idle time.Duration) (time.Time, bool) {
	if w.opening.Load() {
		return time.Time{}, false
	}
	last := w.last.Load()
	if last == 0 {
		return time.Time{}, false
	}
	rtt := time.Duration(w.rttNs.Load())
	if rtt <= 0 { // unknown: a stream open takes a round trip or more
		rtt = time.Duration(w.dial.Load()) / 2
	}
	limit := max(idle, 4*rtt, 4*time.Duration(w.wait.Load()))
	return time.Unix(0, last).Add(limit), true
}

// watchedReader notes every read that returns bytes in its metaWatch.
type watchedReader struct {
	r io.Reader
	w *metaWatch
}

func (r watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.arrived()
	}
	return n, err
}

// errIsBadData reports whether err means the peer sent bad bytes.
func errIsBadData(err error) bool {
	return errors.Is(err, ErrBadData) || errors.Is(err, ErrProtocol) || errors.Is(err, chunker.ErrChunkMismatch)
}
