package discovery

import (
	"net/netip"
	"testing"

	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

func TestLANAnnouncement(t *testing.T) {
	b := appendLANAnnouncement(nil, CommunityID, 7077)
	if len(b) != lanSize {
		t.Fatalf("announcement is %d bytes, want %d", len(b), lanSize)
	}
	c, port, err := decodeLANAnnouncement(b)
	if err != nil || c != CommunityID || port != 7077 {
		t.Fatalf("decoded (%s, %d, %v), want (%s, 7077, nil)", c, port, err, CommunityID)
	}
	bad := map[string][]byte{
		"short":   b[:len(b)-1],
		"long":    append(append([]byte(nil), b...), 0),
		"magic":   append([]byte("shoal-lax"), b[9:]...),
		"version": append(append([]byte(nil), b[:9]...), append([]byte{2}, b[10:]...)...),
		"empty":   nil,
	}
	for name, in := range bad {
		if _, _, err := decodeLANAnnouncement(in); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// TestLANAnnouncementWalks feeds an announcement to a community without
// sockets or Run: it asks the walk to go to the announced port, and
// ignores its own.
func TestLANAnnouncementWalks(t *testing.T) {
	w := &captureWriter{}
	ep, err := ipv8.NewEndpoint(w, ipv8.Config{Key: testKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(ep, Config{LANAddress: netip.MustParseAddrPort("127.0.0.1:5000")})
	if err != nil {
		t.Fatal(err)
	}
	c.onLANAnnouncement(netip.MustParseAddrPort("127.0.0.1:39999"), appendLANAnnouncement(nil, CommunityID, 5000))
	if n := len(c.walkTo); n != 0 {
		t.Fatalf("walked to its own announcement (%d queued)", n)
	}
	c.onLANAnnouncement(netip.MustParseAddrPort("127.0.0.1:39999"), appendLANAnnouncement(nil, ipv8.CommunityID{1}, 6000))
	if n := len(c.walkTo); n != 0 {
		t.Fatalf("walked to another community's announcement")
	}
	c.onLANAnnouncement(netip.MustParseAddrPort("127.0.0.1:39999"), appendLANAnnouncement(nil, CommunityID, 6000))
	if n := len(c.walkTo); n != 1 {
		t.Fatalf("after an announcement of port 6000: %d queued, want 1", n)
	}
	if a := <-c.walkTo; a != netip.MustParseAddrPort("127.0.0.1:6000") {
		t.Fatalf("walk queued to %s, want 127.0.0.1:6000", a)
	}
	if n := w.count(); n != 0 {
		t.Fatalf("%d datagrams sent without Run", n)
	}
}
