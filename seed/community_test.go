package seed

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
	"github.com/shoal-p2p/shoal/overlay/ipv8/community"
)

// TestBootstrapPeerListed: a node that bootstrapped from another full
// node lists it among its peers (the seed API behind `shoal peers`),
// through discovery, not through a QUIC connection; the LAN address it
// announces is its socket's.
func TestBootstrapPeerListed(t *testing.T) {
	a := startNode(t)
	b := startNode(t, a.Addr().String())
	testwait.Eventually(t, 30*time.Second, "b lists its bootstrap node a", func() error {
		peers, _ := b.Peers(context.Background())
		i := slices.IndexFunc(peers, func(p PeerInfo) bool { return p.PeerID == a.PeerID().String() })
		if i < 0 {
			return fmt.Errorf("b's peers: %+v", peers)
		}
		return nil
	})
	if conns := b.ov.Conns(); len(conns) != 0 {
		t.Fatalf("b has %d QUIC connections; the test wants discovery alone to list a", len(conns))
	}
	ps := b.disc.Peers()
	if len(ps) != 1 || ps[0].Addr != a.Addr() || !ps[0].Bootstrap {
		t.Fatalf("b's discovery peers %+v, want a as a bootstrap peer", ps)
	}
	// a learned b's LAN address from b's request: b's socket address.
	testwait.Eventually(t, 30*time.Second, "a lists b with b's socket address as LAN", func() error {
		for _, p := range a.disc.Peers() {
			if p.Addr == b.Addr() && p.LAN == b.Addr() {
				return nil
			}
		}
		return fmt.Errorf("a's discovery peers %+v, want b with LAN %s", a.disc.Peers(), b.Addr())
	})
}

// TestNodeCommunity: an embedder adds a community to two nodes; its walk
// bootstraps from the node's bootstrap address, messages flow, and the
// node reports the community's counters.
func TestNodeCommunity(t *testing.T) {
	a := startNode(t)
	b := startNode(t, a.Addr().String())
	id := ipv8.MustCommunityID("5348f41c0a1d00000000000000000000000000ab")
	text := community.MessageType[string]{
		ID: 42, Framing: ipv8.FramingSignedNoTime,
		Encode: func(b []byte, s *string) ([]byte, error) { return ipv8.NewFieldWriter(b).VarlenHUTF8(*s).Bytes() },
		Decode: func(p []byte) (string, error) { r := ipv8.NewFieldReader(p); s := r.VarlenHUTF8(); return s, r.Done() },
	}
	var mu sync.Mutex
	var got []string
	ca, err := a.NewCommunity(community.Config{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := community.Handle(ca, text, func(_ community.Sender, s string) { mu.Lock(); got = append(got, s); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	cb, err := b.NewCommunity(community.Config{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := community.Declare(cb, text); err != nil {
		t.Fatal(err)
	}
	if err := a.StartCommunity(ca); err != nil {
		t.Fatal(err)
	}
	// b asks its bootstrap node a at once and then only every
	// BootstrapInterval (30 s): a request that beat a's registration
	// would cost the whole wait below.
	testwait.Eventually(t, 10*time.Second, "a's community is registered", func() error {
		if _, ok := a.ov.Endpoint().CommunityStats(id); !ok {
			return fmt.Errorf("a's endpoint serves %v", a.ov.Endpoint().Communities())
		}
		return nil
	})
	if err := b.StartCommunity(cb); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 30*time.Second, "b's community finds a and a hears b", func() error {
		if _, err := community.Broadcast(cb, text, "hello"); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 {
			return fmt.Errorf("a heard nothing; b's community peers %+v", cb.Peers())
		}
		return nil
	})
	s := a.CommunityStats()[id]
	if s.Handled == 0 || s.Delivered == 0 {
		t.Errorf("a's counters for the community: %+v", s)
	}
	if _, ok := a.CommunityStats()[a.disc.ID()]; !ok {
		t.Errorf("no counters for the discovery community")
	}
}

// TestCommunityMetrics: the collector reports every registered community
// (discovery, DHT) with its counters.
func TestCommunityMetrics(t *testing.T) {
	a := startNode(t)
	b := startNode(t, a.Addr().String())
	testwait.Eventually(t, 30*time.Second, "b's walk lists a", func() error {
		if b.disc.NumPeers() == 0 {
			return fmt.Errorf("no peers")
		}
		return nil
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(communityCollector{b})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var delivered float64
	var peers float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["community"] != b.disc.ID().String() {
				continue
			}
			switch {
			case mf.GetName() == "shoal_ipv8_community_datagrams_total" && labels["outcome"] == "delivered":
				delivered = m.GetCounter().GetValue()
			case mf.GetName() == "shoal_ipv8_community_peers":
				peers = m.GetGauge().GetValue()
			}
		}
	}
	if delivered == 0 || peers == 0 {
		t.Errorf("discovery community: %v delivered, %v peers; want both above 0", delivered, peers)
	}
	rec := httptest.NewRecorder()
	if err := b.writeMetrics(rec); err != nil {
		t.Fatal(err)
	}
	want := `shoal_ipv8_community_datagrams_total{community="` + b.disc.ID().String() + `",outcome="delivered"}`
	if !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics lacks %s:\n%s", want, rec.Body.String())
	}
}
