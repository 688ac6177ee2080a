package discovery

import (
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

type captureWriter struct {
	mu sync.Mutex
	to []netip.AddrPort
}

func (w *captureWriter) WriteTo(b []byte, addr net.Addr) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.to = append(w.to, addr.(*net.UDPAddr).AddrPort())
	return len(b), nil
}

func (w *captureWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.to)
}

func (w *captureWriter) last() netip.AddrPort {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.to) == 0 {
		return netip.AddrPort{}
	}
	return w.to[len(w.to)-1]
}

func testKey(t *testing.T) *identity.KeyPair {
	t.Helper()
	kp, err := identity.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}
