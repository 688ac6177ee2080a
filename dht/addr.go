package dht

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

const (
	addrTypeIPv4 = 0x01
	addrTypeIPv6 = 0x03
	maxAddrSize  = 19
	contactMax   = 32 + maxAddrSize
)

// addrSize returns the encoded size of a.
func addrSize(a netip.AddrPort) int {
	if a.Addr().Unmap().Is4() {
		return 7
	}
	return 19
}

// appendAddr appends a in IPv8's ip_address encoding; IPv4-mapped addresses
// are written as IPv4.
func appendAddr(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().Unmap()
	if ip.Is4() {
		v4 := ip.As4()
		b = append(b, addrTypeIPv4)
		b = append(b, v4[:]...)
	} else {
		v6 := ip.As16()
		b = append(b, addrTypeIPv6)
		b = append(b, v6[:]...)
	}
	return binary.BigEndian.AppendUint16(b, a.Port())
}

// validAddr reports whether a can be carried on the wire: a real address
// and a non-zero port.
func validAddr(a netip.AddrPort) bool {
	return a.Addr().IsValid() && !a.Addr().IsUnspecified() && a.Port() != 0
}

// readAddr reads one ip_address from the front of b.
func readAddr(b []byte) (netip.AddrPort, []byte, error) {
	if len(b) < 1 {
		return netip.AddrPort{}, nil, fmt.Errorf("%w: address: truncated", ErrMalformed)
	}
	var ip netip.Addr
	switch b[0] {
	case addrTypeIPv4:
		if len(b) < 7 {
			return netip.AddrPort{}, nil, fmt.Errorf("%w: ipv4 address: %d bytes, want 7", ErrMalformed, len(b))
		}
		ip = netip.AddrFrom4([4]byte(b[1:5]))
		b = b[5:]
	case addrTypeIPv6:
		if len(b) < 19 {
			return netip.AddrPort{}, nil, fmt.Errorf("%w: ipv6 address: %d bytes, want 19", ErrMalformed, len(b))
		}
		ip = netip.AddrFrom16([16]byte(b[1:17]))
		if ip.Is4In6() {
			return netip.AddrPort{}, nil, fmt.Errorf("%w: ipv4-mapped address in ipv6 form", ErrMalformed)
		}
		b = b[17:]
	default:
		return netip.AddrPort{}, nil, fmt.Errorf("%w: address type %#02x", ErrMalformed, b[0])
	}
	a := netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b))
	if !validAddr(a) {
		return netip.AddrPort{}, nil, fmt.Errorf("%w: unusable address %s", ErrMalformed, a)
	}
	return a, b[2:], nil
}

// appendContact appends one contact.
func appendContact(b []byte, c Contact) []byte {
	b = append(b, c.ID[:]...)
	return appendAddr(b, c.Addr)
}

func readContacts(b []byte) ([]Contact, []byte, error) {
	if len(b) < 1 {
		return nil, nil, fmt.Errorf("%w: contact count: truncated", ErrMalformed)
	}
	n := int(b[0])
	b = b[1:]
	if n*(32+7) > len(b) { // check before allocating
		return nil, nil, fmt.Errorf("%w: %d contacts in %d bytes", ErrMalformed, n, len(b))
	}
	var cs []Contact
	if n > 0 {
		cs = make([]Contact, n)
	}
	for i := range cs {
		if len(b) < 32 {
			return nil, nil, fmt.Errorf("%w: contact %d: truncated", ErrMalformed, i)
		}
		cs[i].ID = identity.PeerID(b[:32])
		a, rest, err := readAddr(b[32:])
		if err != nil {
			return nil, nil, fmt.Errorf("contact %d: %w", i, err)
		}
		cs[i].Addr, b = a, rest
	}
	return cs, b, nil
}
