package overlaytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/dht"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// datagramWriter adapts overlay.Node.WriteDatagram to ipv8.Writer.
type datagramWriter struct{ n *overlay.Node }

func (w datagramWriter) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("overlaytest: not a UDP address")
	}
	if err := w.n.WriteDatagram(b, ua.AddrPort()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// community is the DHT community: it hands verified payloads to the DHT
// node and sends the node's payloads as signed messages.
type community struct {
	ep   *ipv8.Endpoint
	node *dht.Node
}

func (c *community) Framing(msgID byte) ipv8.Framing {
	if msgID == dht.IPv8MessageID {
		return ipv8.FramingSigned
	}
	return ipv8.FramingUnknown
}

func (c *community) HandleMessage(m *ipv8.Message) {
	if c.node != nil {
		c.node.HandleMessage(m.From, m.Key, m.Payload)
	}
}

func (c *community) Send(to netip.AddrPort, payload []byte) error {
	return c.ep.Send(to, ipv8.CommunityID(dht.CommunityID), dht.IPv8MessageID, payload)
}

type peer struct {
	ep   *ipv8.Endpoint
	ov   *overlay.Node
	dht  *dht.Node
	addr netip.AddrPort
}

func startPeer(t *testing.T) *peer {
	t.Helper()
	return startPeerAt(t, "127.0.0.1:0")
}

// startPeerAt runs a DHT node over an overlay node bound to listen.
func startPeerAt(t *testing.T, listen string) *peer {
	t.Helper()
	kp, err := identity.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	ov, err := overlay.New(overlay.Config{ListenAddr: listen, KeyPair: kp, SocketBuffer: 1 << 20})
	if err != nil {
		t.Fatalf("overlay.New: %v", err)
	}
	ep, err := ipv8.NewEndpoint(datagramWriter{ov}, ipv8.Config{Key: kp})
	if err != nil {
		t.Fatalf("ipv8.NewEndpoint: %v", err)
	}
	com := &community{ep: ep}
	if err := ep.Register(ipv8.CommunityID(dht.CommunityID), com); err != nil {
		t.Fatalf("register: %v", err)
	}
	addr := ov.LocalAddr()
	node, err := dht.New(dht.Config{Addrs: []netip.AddrPort{addr}}, kp, com)
	if err != nil {
		t.Fatalf("dht.New: %v", err)
	}
	com.node = node
	ov.SetDatagramHandler(ep.HandlePacket)
	// Both parts run until cleanup, which waits for them, then closes the
	// socket (the lifecycle of docs/architecture.md).
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { ov.Run(ctx) })
	wg.Go(func() { node.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		ov.Close()
	})
	return &peer{ep: ep, ov: ov, dht: node, addr: addr}
}

// Test30NodesOverOverlay runs 30 DHT nodes over real QUIC-node sockets on
// loopback, IPv8 signed datagrams in the DHT community; one provides, the
// others find it.
func Test30NodesOverOverlay(t *testing.T) {
	const count = 30
	leakcheck.Check(t) // its cleanup runs last: after every node and socket closed
	peers := make([]*peer, count)
	for i := range peers {
		peers[i] = startPeer(t)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Everyone bootstraps at once from the first node.
	errs := make(chan error, count)
	var wg sync.WaitGroup
	for i := 1; i < count; i++ {
		wg.Go(func() {
			if err := peers[i].dht.Bootstrap(ctx, []netip.AddrPort{peers[0].addr}); err != nil {
				errs <- fmt.Errorf("peer %d bootstrap: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("bootstrapped %d nodes in %v", count, time.Since(start).Round(time.Millisecond))
	content := dht.Key{0x5e, 0xed}
	provider := peers[count/2]
	if err := provider.dht.Provide(ctx, content); err != nil {
		t.Fatalf("provide: %v", err)
	}
	// Everyone else looks it up at once.
	results := make([][]dht.Provider, count)
	for i, p := range peers {
		if p == provider {
			continue
		}
		wg.Go(func() {
			for pr := range p.dht.FindProviders(ctx, content) {
				results[i] = append(results[i], pr)
			}
		})
	}
	wg.Wait()
	for i, got := range results {
		if peers[i] == provider {
			continue
		}
		if len(got) != 1 || got[0].ID != provider.dht.Self() || len(got[0].Addrs) != 1 || got[0].Addrs[0] != provider.addr {
			t.Fatalf("peer %d found %+v, want the provider %s at %s", i, got, provider.dht.Self().Short(), provider.addr)
		}
	}
	var bad uint64
	for _, p := range peers {
		c := p.dht.Counters()
		bad += c.Malformed + c.Oversized + c.BadSignatures + c.BadTokens + c.ForeignRecords + c.RateLimited + c.HostRateLimited
	}
	var timeouts, sent, delivered, rateLimited, sendErrs, ovDatagrams uint64
	for _, p := range peers {
		timeouts += p.dht.Counters().Timeouts
		st := p.ep.Stats()
		sent += st.Sent
		delivered += st.Delivered
		rateLimited += st.DroppedRateLimited
		sendErrs += st.SendErrors
		ovDatagrams += p.ov.Stats().Datagrams
	}
	t.Logf("ipv8: sent %d, overlay handed over %d, delivered %d, rate-limited %d, send errors %d", sent, ovDatagrams, delivered, rateLimited, sendErrs)
	t.Logf("provided and found by %d nodes in %v; %d request timeouts in all", count-1, time.Since(start).Round(time.Millisecond), timeouts)
	if bad != 0 {
		t.Fatalf("%d refusals counted among honest nodes", bad)
	}
}
