package community_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
	"github.com/shoal-p2p/shoal/overlay/ipv8/community"
	"github.com/shoal-p2p/shoal/overlay/ipv8/discovery"
)

// chatMessage is py-ipv8's ChatPayload: message 42, one varlenHutf8
// field, signed, in py-ipv8's default framing.
var chatMessage = community.MessageType[string]{
	ID:      42,
	Framing: ipv8.FramingSignedNoTime,
	Encode: func(b []byte, text *string) ([]byte, error) {
		return ipv8.NewFieldWriter(b).VarlenHUTF8(*text).Bytes()
	},
	Decode: func(p []byte) (string, error) {
		r := ipv8.NewFieldReader(p)
		text := r.VarlenHUTF8()
		return text, r.Done()
	},
}

// Two members of a chat community on loopback: the second bootstraps
// from the first, learns of it through its walk's events and sends it a
// line.
func Example() {
	id := ipv8.MustCommunityID("5348f41c0a1d00000000000000000000000000aa")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	join := func(walk discovery.Config, onText func(string)) (*community.Community, netip.AddrPort) {
		conn, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		kp, _ := identity.Generate(nil)
		ep, _ := ipv8.NewEndpoint(conn, ipv8.Config{Key: kp})
		c, _ := community.New(ep, community.Config{ID: id, Walk: walk})
		_ = community.Handle(c, chatMessage, func(_ community.Sender, text string) { onText(text) })
		wg.Go(func() { _ = ep.ServeConn(ctx, conn) })
		wg.Go(func() { _ = c.Run(ctx); conn.Close() })
		return c, conn.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	got := make(chan string, 1)
	_, addrA := join(discovery.Config{}, func(s string) { got <- s })
	// OnEvent runs on b's walk goroutine: it must not block.
	found := make(chan netip.AddrPort, 1)
	b, _ := join(discovery.Config{
		Bootstrap: []netip.AddrPort{addrA},
		// a's Run may not have registered yet when b first asks it: ask
		// again after a second, not after the default 30 s.
		BootstrapInterval: time.Second,
		OnEvent: func(e discovery.Event) {
			if e.Kind == discovery.PeerAdded {
				select {
				case found <- e.Peer.Addr:
				default:
				}
			}
		},
	}, func(string) {})

	select {
	case peer := <-found:
		_ = community.Send(b, peer, chatMessage, "hello from Go")
	case <-time.After(10 * time.Second):
		fmt.Println("no peer found")
		return
	}
	select {
	case s := <-got:
		fmt.Println(s)
	case <-time.After(10 * time.Second):
		fmt.Println("no message")
	}
	// Output: hello from Go
}
