package swarm

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

// FetchManifest fetches only the manifest of id from peer (not the leaf
// layer), verified against the content ID: enough to list a folder's files
// before downloading anything. Errors wrapping ErrBadData mean the peer
// lied.
func FetchManifest(ctx context.Context, d Dialer, peer identity.PeerID, addr netip.AddrPort, id chunker.ContentID) (*chunker.Manifest, error) {
	enc, err := fetchBlob(ctx, d, peer, addr, Request{Kind: KindManifest, ID: id}, 1, MaxManifestSize, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching manifest: %w", err)
	}
	if chunker.IDOf(enc) != id {
		return nil, fmt.Errorf("manifest from %s: %w: hash is not the content ID", peer.Short(), ErrBadData)
	}
	m, err := chunker.DecodeManifest(enc)
	if err != nil {
		return nil, fmt.Errorf("manifest from %s: %w: %w", peer.Short(), ErrBadData, err)
	}
	return m, nil
}
