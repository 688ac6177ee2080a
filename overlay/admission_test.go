package overlay

import (
	"net/netip"
	"testing"
)

// The per-IP caps count an IPv6 /64 as one address: walking the
// addresses of one subnet does not buy more slots.
func TestAdmissionPerIPv6Subnet(t *testing.T) {
	cfg, err := Config{MaxConnsPerIP: 4, MaxHandshakesPerIP: 4}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	a := newAdmissions()
	never := func() bool { return false }
	for i := range 4 {
		ip := hostOf(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}))
		if _, why, ok := a.admit(&cfg, ip, 0, never); !ok {
			t.Fatalf("handshake %d from the subnet refused (%v) within its cap of 4", i, why)
		}
	}
	if _, _, ok := a.admit(&cfg, hostOf(netip.MustParseAddr("2001:db8::ff")), 0, never); ok {
		t.Error("a fifth address of the same /64 was admitted past MaxHandshakesPerIP 4")
	}
	if _, why, ok := a.admit(&cfg, hostOf(netip.MustParseAddr("2001:db8:0:1::1")), 0, never); !ok {
		t.Errorf("another /64 refused: %v", why)
	}
	if _, why, ok := a.admit(&cfg, hostOf(netip.MustParseAddr("192.0.2.1")), 0, never); !ok {
		t.Errorf("an IPv4 address refused: %v", why)
	}
}
