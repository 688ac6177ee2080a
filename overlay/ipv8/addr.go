package ipv8

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Address encodings.
const (
	// IPv4Size is the `ipv4` encoding: 4 address bytes and a uint16 port.
	IPv4Size = 6
	// AddrTypeIPv4 and AddrTypeIPv6 are the type bytes of `ip_address`.
	AddrTypeIPv4 byte = 0x01
	AddrTypeIPv6 byte = 0x03
)

// AppendIPv4 appends a in the `ipv4` encoding. The zero AddrPort encodes
// as 0.0.0.0:0; an IPv6 address (other than an IPv4-mapped one) is
// ErrNotIPv4.
func AppendIPv4(b []byte, a netip.AddrPort) ([]byte, error) {
	ip := a.Addr().Unmap()
	switch {
	case !a.IsValid():
		return append(b, 0, 0, 0, 0, 0, 0), nil
	case !ip.Is4():
		return b, fmt.Errorf("%w: %s", ErrNotIPv4, a)
	}
	v4 := ip.As4()
	b = append(b, v4[:]...)
	return binary.BigEndian.AppendUint16(b, a.Port()), nil
}

// ReadIPv4 reads one `ipv4` address from the front of b.
func ReadIPv4(b []byte) (netip.AddrPort, []byte, error) {
	if len(b) < IPv4Size {
		return netip.AddrPort{}, nil, fmt.Errorf("%w: ipv4 address: %d bytes left, want 6", ErrMalformed, len(b))
	}
	ip := netip.AddrFrom4([4]byte(b[:4]))
	return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[4:6])), b[6:], nil
}

// AppendIPAddress appends a in the `ip_address` encoding (7 bytes for IPv4,
// 19 for IPv6). IPv4-mapped IPv6 addresses are written as IPv4; the zero
// AddrPort as IPv4 0.0.0.0:0. Zones are dropped.
func AppendIPAddress(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().Unmap()
	switch {
	case !a.IsValid() || ip.Is4():
		b = append(b, AddrTypeIPv4)
		b, _ = AppendIPv4(b, a)
		return b
	default:
		b = append(b, AddrTypeIPv6)
		v6 := ip.As16()
		b = append(b, v6[:]...)
		return binary.BigEndian.AppendUint16(b, a.Port())
	}
}

// ReadIPAddress reads one `ip_address` from the front of b. Other address
// types (py-ipv8's 0x02 host names) are rejected. IPv4-mapped IPv6
// addresses come back as IPv4.
func ReadIPAddress(b []byte) (netip.AddrPort, []byte, error) {
	t, rest, err := readByte(b, "ip_address type")
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	switch t {
	case AddrTypeIPv4:
		return ReadIPv4(rest)
	case AddrTypeIPv6:
		if len(rest) < 18 {
			return netip.AddrPort{}, nil, fmt.Errorf("%w: ipv6 address: %d bytes left, want 18", ErrMalformed, len(rest))
		}
		ip := netip.AddrFrom16([16]byte(rest[:16])).Unmap()
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(rest[16:18])), rest[18:], nil
	default:
		return netip.AddrPort{}, nil, fmt.Errorf("%w: ip_address type %#02x, want 0x01 or 0x03", ErrMalformed, t)
	}
}

// ZeroAddr reports whether a is unset or 0.0.0.0:0 (IPv8's "no address").
func ZeroAddr(a netip.AddrPort) bool {
	return !a.IsValid() || (a.Addr().IsUnspecified() && a.Port() == 0)
}
