package discovery

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/overlay/ipv8"
	"golang.org/x/sync/errgroup"
)

// LAN announcement: a UDP multicast datagram, separate from the IPv8
// socket, saying "an IPv8 node of this community listens on this port of
// my address":
//
//	+-----------------+---------+-------------------+-------------+
//	| "shoal-lan" (9) | version | community ID (20) | port uint16 |
//	|                 | 0x01    |                   |             |
//	+-----------------+---------+-------------------+-------------+
//
// A receiver walks to (source IP, port) with an ordinary, signed
// introduction request; the announcement itself proves nothing.
const (
	lanMagic   = "shoal-lan"
	lanVersion = 0x01
	lanSize    = len(lanMagic) + 1 + ipv8.CommunityIDSize + 2
)

var errLANAnnouncement = errors.New("discovery: malformed LAN announcement")

func appendLANAnnouncement(b []byte, c ipv8.CommunityID, port uint16) []byte {
	b = append(b, lanMagic...)
	b = append(b, lanVersion)
	b = append(b, c[:]...)
	return binary.BigEndian.AppendUint16(b, port)
}

func decodeLANAnnouncement(b []byte) (ipv8.CommunityID, uint16, error) {
	var c ipv8.CommunityID
	if len(b) != lanSize || !bytes.HasPrefix(b, []byte(lanMagic)) || b[len(lanMagic)] != lanVersion {
		return c, 0, errLANAnnouncement
	}
	copy(c[:], b[len(lanMagic)+1:])
	return c, binary.BigEndian.Uint16(b[lanSize-2:]), nil
}

// onLANAnnouncement walks to the announced node unless it is ourselves
// or already a peer.
func (c *Community) onLANAnnouncement(from netip.AddrPort, b []byte) {
	cid, port, err := decodeLANAnnouncement(b)
	if err != nil || cid != c.cfg.Community || port == 0 {
		return
	}
	addr := netip.AddrPortFrom(from.Addr().Unmap(), port)
	snap := c.snap.Load()
	if addr == snap.lan || addr == snap.wan {
		return
	}
	for _, p := range snap.peers {
		if p.Addr == addr {
			return
		}
	}
	c.WalkTo(addr) // the core checks again that addr is not ourselves
}

// runLAN announces this node on the LAN group every LAN.Interval and
// walks to nodes that announce themselves, until ctx ends.
func (c *Community) runLAN(ctx context.Context) error {
	group := net.UDPAddrFromAddrPort(c.cfg.LAN.Group)
	network := "udp4"
	if c.cfg.LAN.Group.Addr().Is6() {
		network = "udp6"
	}
	// A LAN without multicast must not stop the walk: failures to set up
	// are logged and LAN discovery stays off.
	listen, err := net.ListenMulticastUDP(network, nil, group)
	if err != nil {
		c.cfg.Logger.Warn("discovery: LAN discovery off", "group", group, "err", err)
		return nil
	}
	out, err := net.ListenUDP(network, nil)
	if err != nil {
		listen.Close()
		c.cfg.Logger.Warn("discovery: LAN discovery off", "err", err)
		return nil
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		<-ctx.Done()
		listen.Close()
		out.Close()
		return nil
	})
	g.Go(func() error {
		buf := make([]byte, 256)
		for {
			n, from, err := listen.ReadFromUDPAddrPort(buf)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("discovery: reading LAN group: %w", err)
			}
			c.onLANAnnouncement(from, buf[:n])
		}
	})
	g.Go(func() error {
		t := time.NewTicker(c.cfg.LAN.Interval)
		defer t.Stop()
		for {
			lan, _ := c.Addresses()
			if lan.Port() != 0 {
				_, _ = out.WriteTo(appendLANAnnouncement(nil, c.cfg.Community, lan.Port()), group)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	return g.Wait()
}
