package overlay

import "net/netip"

// admissions counts one transport's incoming handshakes in progress and
// its incoming connections per remote IP, and decides whether a new one
// fits the Config caps. QUIC and TCP each keep one, under their own lock.
type admissions struct {
	handshakes int                // in progress
	halfOpen   map[netip.Addr]int // handshakes in progress per IP
	inbound    map[netip.Addr]int // handshakes and connections per IP
}

func newAdmissions() admissions {
	return admissions{halfOpen: make(map[netip.Addr]int), inbound: make(map[netip.Addr]int)}
}

// admit takes a handshake slot for ip, or says which cap refuses it.
// used counts the transport's connection slots in use; incoming ones may
// take MaxConns-DialReserve of them.
func (a *admissions) admit(cfg *Config, ip netip.Addr, used int) (refusal, bool) {
	switch {
	case a.handshakes >= cfg.MaxHandshakes:
		return refusedHandshakes, false
	case a.halfOpen[ip] >= cfg.MaxHandshakesPerIP:
		return refusedIPHandshakes, false
	case a.inbound[ip] >= cfg.MaxConnsPerIP:
		return refusedIPConns, false
	case used >= cfg.MaxConns-cfg.DialReserve:
		return refusedConns, false
	}
	a.handshakes++
	a.halfOpen[ip]++
	a.inbound[ip]++
	return 0, true
}

// settle ends ip's handshake; the connection keeps its inbound slot.
func (a *admissions) settle(ip netip.Addr) {
	a.handshakes--
	decr(a.halfOpen, ip)
}

// release returns ip's inbound slot (the handshake failed or the
// connection closed).
func (a *admissions) release(ip netip.Addr) { decr(a.inbound, ip) }

func decr(m map[netip.Addr]int, ip netip.Addr) {
	if m[ip]--; m[ip] <= 0 {
		delete(m, ip)
	}
}
