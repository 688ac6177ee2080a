package overlay

import (
	"net/netip"

	"github.com/shoal-p2p/shoal/ratelimit"
)

// hostOf is the key of the per-IP caps: an IPv4 address, or the first
// address of an IPv6 /64 (ratelimit.Host), so that walking the addresses
// of one subnet does not multiply them.
func hostOf(a netip.Addr) netip.Addr { return ratelimit.Host(a).Addr() }

// admissions counts one transport's incoming handshakes in progress and
// its incoming connections per remote IP, and decides whether a new one
// fits the Config caps. QUIC and TCP each keep one, under their own lock.
//
// When MaxHandshakes are in progress, a handshake from an address holding
// fewer of them than another address (by two or more) takes the place of
// that address's oldest one that can be ended: the handshake slots are
// shared fairly between addresses, so attackers on a few addresses cannot
// keep every slot (MaxHandshakesPerIP times their addresses can exceed
// MaxHandshakes) while an honest peer's first handshake is refused. (A
// QUIC handshake can be ended once its ClientHello was read; one stalled
// before that keeps its slot until HandshakeTimeout.)
type admissions struct {
	handshakes int                         // in progress
	halfOpen   map[netip.Addr][]*handshake // handshakes in progress per IP, oldest first
	inbound    map[netip.Addr]int          // handshakes and connections per IP
	evicted    uint64                      // handshakes aborted for another address's
}

// handshake is one incoming handshake's slot.
type handshake struct {
	ip      netip.Addr
	abort   func() bool // ends the handshake if it can; called under the transport's lock
	settled bool
}

func newAdmissions() admissions {
	return admissions{halfOpen: make(map[netip.Addr][]*handshake), inbound: make(map[netip.Addr]int)}
}

// admit takes a handshake slot for ip, or says which cap refuses it.
// used counts the transport's connection slots in use; incoming ones may
// take MaxConns-DialReserve of them. abort ends the handshake if another
// address's handshake takes its place.
func (a *admissions) admit(cfg *Config, ip netip.Addr, used int, abort func() bool) (*handshake, refusal, bool) {
	mine := len(a.halfOpen[ip])
	switch {
	case mine >= cfg.MaxHandshakesPerIP:
		return nil, refusedIPHandshakes, false
	case a.inbound[ip] >= cfg.MaxConnsPerIP:
		return nil, refusedIPConns, false
	case a.handshakes >= cfg.MaxHandshakes:
		if !a.evictFor(mine) {
			return nil, refusedHandshakes, false
		}
		// The evicted handshake's slot was among used.
		used--
	}
	if used >= cfg.MaxConns-cfg.DialReserve {
		return nil, refusedConns, false
	}
	h := &handshake{ip: ip, abort: abort}
	a.handshakes++
	a.halfOpen[ip] = append(a.halfOpen[ip], h)
	a.inbound[ip]++
	return h, 0, true
}

// evictFor ends the oldest handshake that can be ended of the address
// holding the most, if it holds at least two more than mine, and settles
// it.
func (a *admissions) evictFor(mine int) bool {
	var victim []*handshake
	for _, hs := range a.halfOpen {
		if len(hs) > len(victim) {
			victim = hs
		}
	}
	if len(victim) < mine+2 {
		return false
	}
	for _, h := range victim {
		if h.abort() {
			a.settle(h)
			a.evicted++
			return true
		}
	}
	return false
}

// settle ends h's handshake slot once; the connection keeps its inbound
// slot.
func (a *admissions) settle(h *handshake) {
	if h == nil || h.settled {
		return
	}
	h.settled = true
	a.handshakes--
	hs := a.halfOpen[h.ip]
	for i, x := range hs {
		if x == h {
			hs = append(hs[:i:i], hs[i+1:]...)
			break
		}
	}
	if len(hs) == 0 {
		delete(a.halfOpen, h.ip)
	} else {
		a.halfOpen[h.ip] = hs
	}
}

// release returns ip's inbound slot (the handshake failed or the
// connection closed).
func (a *admissions) release(ip netip.Addr) {
	if a.inbound[ip]--; a.inbound[ip] <= 0 {
		delete(a.inbound, ip)
	}
}
