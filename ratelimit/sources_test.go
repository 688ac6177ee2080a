package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

func TestHost(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"::1", "::/64"},
	} {
		if got := Host(netip.MustParseAddr(c.in)); got.String() != c.want {
			t.Errorf("Host(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

// One host's many ports share the host's budget; another host keeps its
// own, and a source refused by its own bucket spends nothing of its
// host's.
func TestSourcesHostBudget(t *testing.T) {
	s := NewSources(10, 10, 20, 20, 1024)
	now := time.Unix(1000, 0)
	allowed, byHost := 0, 0
	for port := range 100 { // 100 sockets of one host, 5 datagrams each
		for range 5 {
			ok, h := s.Allow(netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), uint16(1000+port)), now)
			if ok {
				allowed++
			} else if h {
				byHost++
			}
		}
	}
	if allowed != 20 || byHost != 480 {
		t.Errorf("one host over 100 ports: %d allowed, %d refused by the host budget; want 20 and 480", allowed, byHost)
	}
	// Another address of the same /64 is the same host.
	if ok, h := s.Allow(netip.MustParseAddrPort("[2001:db8::2]:1"), now); ok || !h {
		t.Errorf("same /64: ok %v byHost %v, want refused by the host budget", ok, h)
	}
	// Another host is untouched.
	if ok, _ := s.Allow(netip.MustParseAddrPort("[2001:db8:0:1::1]:1"), now); !ok {
		t.Error("another /64 refused")
	}

	// A source over its own budget does not drain its host's.
	s = NewSources(1, 1, 3, 3, 1024)
	a := netip.MustParseAddrPort("192.0.2.1:1")
	for range 10 {
		s.Allow(a, now)
	}
	for port := range 2 {
		if ok, _ := s.Allow(netip.AddrPortFrom(a.Addr(), uint16(2+port)), now); !ok {
			t.Errorf("second socket %d of the host refused after the first spent only its own budget", port)
		}
	}
}
