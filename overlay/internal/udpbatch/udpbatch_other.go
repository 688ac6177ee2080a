//go:build !linux

package udpbatch

import "net"

// New returns c unchanged: the offloads exist only on Linux.
func New(c *net.UDPConn) net.PacketConn { return c }
