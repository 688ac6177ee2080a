package seed

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/overlay/relay"
)

// TestPeersShowPath: after a download, both ends list each other with the
// path of their connection (loopback counts as the LAN), in Peers and in
// Status.Connected; a relayed route's address is named relayed.
func TestPeersShowPath(t *testing.T) {
	pub, dl := startNode(t), startNode(t)
	src := filepath.Join(t.TempDir(), "tree")
	writeTree(t, src, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dl.Get(ctx, GetRequest{Link: p.Link, Out: t.TempDir()}, nil); err != nil {
		t.Fatal(err)
	}
	peers, err := dl.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, pi := range peers {
		if pi.PeerID == pub.PeerID().String() {
			found = true
			if pi.Path != PathLAN || pi.Conn == "" {
				t.Errorf("downloader lists the publisher with path %q via %q, want %q", pi.Path, pi.Conn, PathLAN)
			}
		}
	}
	if !found {
		t.Fatal("the downloader does not list the publisher")
	}
	st, err := dl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Connected) == 0 || st.Connected[0].Path == "" {
		t.Errorf("status lists connected peers %+v, want the publisher with its path", st.Connected)
	}
	v := relayVirtual(t)
	if got := dl.pathTo(v, nil); got != PathRelayed {
		t.Errorf("path to %s is %q, want %q", v, got, PathRelayed)
	}
}

// relayVirtual returns an address in the relay's virtual range.
func relayVirtual(t *testing.T) netip.AddrPort {
	t.Helper()
	v := netip.MustParseAddrPort("[100::5]:1")
	if !relay.IsVirtual(v) {
		t.Fatalf("%s is not virtual", v)
	}
	return v
}
