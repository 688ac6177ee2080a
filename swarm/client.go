package swarm

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

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
	enc, err := fetchBlob(ctx, d, peer, addr, Request{Kind: KindManifest, ID: id}, 1, MaxManifestSize)
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
	raw, err := fetchBlob(ctx, d, peer, addr, Request{Kind: KindLeaves, ID: id}, n, n)
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
// nothing).
func fetchBlob(ctx context.Context, d Dialer, peer identity.PeerID, addr netip.AddrPort, req Request, minLen, maxLen int) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, stop, err := openRequest(ctx, d, peer, addr, req)
	if err != nil {
		return nil, err
	}
	defer stop()
	n, err := readResponse(st, minLen, maxLen)
	if err != nil {
		reset(st, CodeCancelled)
		return nil, err
	}
	b, err := readGrowing(st, n)
	if err != nil {
		reset(st, CodeCancelled)
		return nil, fmt.Errorf("reading %d-byte %s: %w", n, req.Kind, err)
	}
	return b, nil
}

// errIsBadData reports whether err means the peer sent bad bytes.
func errIsBadData(err error) bool {
	return errors.Is(err, ErrBadData) || errors.Is(err, ErrProtocol) || errors.Is(err, chunker.ErrChunkMismatch)
}
