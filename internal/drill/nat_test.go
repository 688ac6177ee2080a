//go:build linux

package drill

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// udpIn opens a UDP socket bound to addr inside the host's namespace.
func udpIn(t *testing.T, ns, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := inNS(ns, func() error {
		pc, err := net.ListenPacket("udp4", addr)
		if err == nil {
			c = pc.(*net.UDPConn)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvFrom waits up to 3 s for one packet on c and returns its source, or
// an invalid address when none came.
func recvFrom(c *net.UDPConn) netip.AddrPort {
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	_, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
}

// TestNATRouters checks the NAT harness itself: a cone router keeps one
// public port for a private socket whatever the destination, a symmetric
// one picks a new port per destination, both rewrite to the router's
// public address, an unsolicited packet from a third party does not get
// in, a host on the same private segment is reached at its private
// address, and Close deletes the routers' namespaces.
func TestNATRouters(t *testing.T) {
	if why := natAvailable(); why != "" {
		t.Skip(why)
	}
	nt := NewPublic(t, 2) // two public hosts
	pubs := nt.Hosts()
	cone, sym := nt.AddRouter(Cone, false), nt.AddRouter(Symmetric, true)
	hc, hs := cone.AddHost(), sym.AddHost()
	for _, tc := range []struct {
		r        *Router
		h        *Host
		samePort bool
	}{{cone, hc, true}, {sym, hs, false}} {
		port := fmt.Sprintf(":%d", 9000+tc.r.Index)
		s0 := udpIn(t, pubs[0].NS, pubs[0].Addr.String()+port)
		s1 := udpIn(t, pubs[1].NS, pubs[1].Addr.String()+port)
		third := udpIn(t, pubs[1].NS, pubs[1].Addr.String()+":0")
		c := udpIn(t, tc.h.NS, "0.0.0.0:5555")
		var seen []netip.AddrPort
		for _, s := range []*net.UDPConn{s0, s1} {
			to := s.LocalAddr().(*net.UDPAddr).AddrPort()
			if _, err := c.WriteToUDPAddrPort([]byte("hi"), to); err != nil {
				t.Fatal(err)
			}
			from := recvFrom(s)
			if from.Addr() != tc.r.Public {
				t.Fatalf("%s NAT: packet arrived from %v, want the router's %v", tc.r.Kind, from, tc.r.Public)
			}
			seen = append(seen, from)
		}
		if same := seen[0].Port() == seen[1].Port(); same != tc.samePort {
			t.Errorf("%s NAT: public ports %d and %d towards two destinations; same port: %v, want %v",
				tc.r.Kind, seen[0].Port(), seen[1].Port(), same, tc.samePort)
		}
		// c never sent to third: its packet to the mapping must not get
		// in (port-restricted filtering).
		third.WriteToUDPAddrPort([]byte("unsolicited"), seen[0])
		// Host 0 answers from where c sent: that gets in.
		s0.WriteToUDPAddrPort([]byte("reply"), seen[0])
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 64)
		k, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:k]) != "reply" || from.Addr().Unmap() != pubs[0].Addr {
			t.Errorf("%s NAT: first packet in was %q from %v (%v), want the reply from %v", tc.r.Kind, buf[:k], from, err, pubs[0].Addr)
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if k, from, err := c.ReadFromUDPAddrPort(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s NAT let in %q from %v", tc.r.Kind, buf[:k], from)
		}
	}
	// Two hosts behind the same router reach each other on the LAN.
	hc2 := cone.AddHost()
	a := udpIn(t, hc.NS, hc.Addr.String()+":6000")
	b := udpIn(t, hc2.NS, hc2.Addr.String()+":6000")
	a.WriteToUDPAddrPort([]byte("lan"), b.LocalAddr().(*net.UDPAddr).AddrPort())
	if from := recvFrom(b); from.Addr() != hc.Addr {
		t.Errorf("LAN packet arrived from %v, want %v", from, hc.Addr)
	}
	names, err := Namespaces(nt.prefix)
	if err != nil || len(names) != 1+2+2+3 {
		t.Errorf("namespaces %v (%v), want the bridge, 2 public hosts, 2 routers, 3 private hosts", names, err)
	}
	nt.Close()
	if names, _ := Namespaces(nt.prefix); len(names) != 0 {
		t.Fatalf("Close left namespaces %v", names)
	}
}
