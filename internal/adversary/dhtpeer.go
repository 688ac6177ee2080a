package adversary

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"github.com/shoal-p2p/shoal/dht"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// DHTPeer is a SwarmPeer that also runs a DHT node in the DHT community
// over its overlay socket, as a shoal node does. With a serving mode other
// than NotFound it is a Sybil: it can announce itself in the DHT as a
// provider of content it does not hold (Provide) and then answer the
// peers that come for it in its mode. With NotFound it is an honest
// storing node that holds no content (a DHT network for tests).
type DHTPeer struct {
	*SwarmPeer
	DHT *dht.Node

	close func()
}

// Close stops the DHT node and closes the peer's socket; the test's end
// does it too.
func (p *DHTPeer) Close() { p.close() }

// dhtCommunity hands verified DHT payloads to the node and sends its
// payloads as signed messages.
type dhtCommunity struct {
	ep   *ipv8.Endpoint
	node *dht.Node
}

func (c *dhtCommunity) Framing(msgID byte) ipv8.Framing {
	if msgID == dht.IPv8MessageID {
		return ipv8.FramingSigned
	}
	return ipv8.FramingUnknown
}

func (c *dhtCommunity) HandleMessage(m *ipv8.Message) { c.node.HandleMessage(m.From, m.Key, m.Payload) }

func (c *dhtCommunity) Send(to netip.AddrPort, payload []byte) error {
	return c.ep.Send(to, ipv8.CommunityID(dht.CommunityID), dht.IPv8MessageID, payload)
}

// NewDHTPeer starts a DHT peer with a fresh identity on listen (e.g.
// "127.0.1.7:0") answering swarm requests in mode; it is closed when the
// test ends. Join it with DHT.Bootstrap.
func NewDHTPeer(tb testing.TB, listen string, mode SwarmMode) *DHTPeer {
	tb.Helper()
	kp, err := identity.Generate(nil)
	if err != nil {
		tb.Fatal(err)
	}
	sp := NewSwarmPeerWith(tb, overlay.Config{ListenAddr: listen, KeyPair: kp, SocketBuffer: 1 << 20}, mode)
	ep := sp.Node.Endpoint()
	com := &dhtCommunity{ep: ep}
	node, err := dht.New(dht.Config{Addrs: []netip.AddrPort{sp.Addr()}}, kp, com)
	if err != nil {
		tb.Fatalf("adversary: dht.New: %v", err)
	}
	com.node = node
	if err := ep.Register(ipv8.CommunityID(dht.CommunityID), com); err != nil {
		tb.Fatalf("adversary: dht community: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { node.Run(ctx) })
	stop := sync.OnceFunc(func() {
		cancel()
		wg.Wait()
		sp.Node.Close()
	})
	tb.Cleanup(stop) // before NewSwarmPeerWith's (cleanups run last first)
	return &DHTPeer{SwarmPeer: sp, DHT: node, close: stop}
}
