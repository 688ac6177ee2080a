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
	w.arrived()
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
// can be told from one that is sending. Its methods are safe on a nil
// *metaWatch (no-ops) and from any goroutine.
type metaWatch struct {
	opening atomic.Bool  // dialing or opening a request stream
	last    atomic.Int64 // Unix ns: request sent, or header or body bytes arrived
	dial    atomic.Int64 // ns: the longest stream open so far (about one round trip or more)
	poke    func()       // called when a request is sent (may be nil)
}

func (w *metaWatch) opened(took time.Duration) {
	if w == nil {
		return
	}
	if int64(took) > w.dial.Load() {
		w.dial.Store(int64(took))
	}
	w.last.Store(time.Now().UnixNano())
	w.opening.Store(false)
	if w.poke != nil {
		w.poke()
	}
}

func (w *metaWatch) arrived() {
	if w != nil {
		w.last.Store(time.Now().UnixNano())
	}
}

// silentAt returns when the fetch counts as silent if nothing more
// arrives: idle (at least) and twice its longest stream open after the
// request was sent or the last bytes arrived. It returns false while a
// stream is being opened.
func (w *metaWatch) silentAt(idle time.Duration) (time.Time, bool) {
	if w.opening.Load() {
		return time.Time{}, false
	}
	last := w.last.Load()
	if last == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, last).Add(max(idle, 2*time.Duration(w.dial.Load()))), true
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
