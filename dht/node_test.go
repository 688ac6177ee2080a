package dht

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// memNet is an in-memory network for Nodes: one goroutine delivers queued
// packets after a fixed delay. The queue is bounded; overflow drops.
type memNet struct {
	mu    sync.Mutex
	nodes map[netip.AddrPort]*Node
	keys  map[netip.AddrPort]identity.PublicKey
	queue chan packet
	done  chan struct{}
	wg    sync.WaitGroup
}

type packet struct {
	from, to netip.AddrPort
	payload  []byte
}

func newMemNet() *memNet {
	m := &memNet{nodes: map[netip.AddrPort]*Node{}, keys: map[netip.AddrPort]identity.PublicKey{},
		queue: make(chan packet, 4096), done: make(chan struct{})}
	m.wg.Add(1)
	go m.run()
	return m
}

func (m *memNet) run() {
	defer m.wg.Done()
	for {
		select {
		case <-m.done:
			return
		case p := <-m.queue:
			time.Sleep(5 * time.Millisecond) // the simulated link's delay, not a wait for a state
			m.mu.Lock()
			n, key := m.nodes[p.to], m.keys[p.from]
			m.mu.Unlock()
			if n != nil {
				n.HandleMessage(p.from, key, p.payload)
			}
		}
	}
}

func (m *memNet) close() { close(m.done); m.wg.Wait() }

// endpoint is one node's view of the memNet.
type endpoint struct {
	net  *memNet
	addr netip.AddrPort
}

func (e endpoint) Send(to netip.AddrPort, payload []byte) error {
	select {
	case e.net.queue <- packet{from: e.addr, to: to, payload: payload}:
		return nil
	default:
		return errors.New("memnet: queue full")
	}
}

// runNode runs n until the returned stop is called; stop waits for Run to
// return and may be called more than once.
func runNode(t *testing.T, n *Node) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
}

func TestNodesFindProvider(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := newMemNet()
		defer mn.close()
		const count = 30
		nodes := make([]*Node, count)
		addrs := make([]netip.AddrPort, count)
		for i := range nodes {
			kp := testKeyPair(t, uint64(i+1))
			addrs[i] = testAddr(i + 1)
			n, err := New(Config{Addrs: []netip.AddrPort{addrs[i]}}, kp, endpoint{mn, addrs[i]})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer runNode(t, n)()
			nodes[i] = n
			mn.mu.Lock()
			mn.nodes[addrs[i]], mn.keys[addrs[i]] = n, kp.Public()
			mn.mu.Unlock()
		}
		ctx := context.Background()
		for i := 1; i < count; i++ {
			if err := nodes[i].Bootstrap(ctx, addrs[:1]); err != nil {
				t.Fatalf("node %d bootstrap: %v", i, err)
			}
		}
		content := Key{0xc0, 0x47}
		if err := nodes[7].Provide(ctx, content); err != nil {
			t.Fatalf("provide: %v", err)
		}
		for i, n := range nodes {
			if i == 7 {
				continue
			}
			var got []Provider
			for p := range n.FindProviders(ctx, content) {
				got = append(got, p)
			}
			if len(got) != 1 || got[0].ID != nodes[7].Self() || len(got[0].Addrs) != 1 || got[0].Addrs[0] != addrs[7] {
				t.Fatalf("node %d found %+v, want node 7 at %s", i, got, addrs[7])
			}
		}
		if nodes[0].TableSize() < 10 {
			t.Fatalf("bootstrap node knows %d nodes, want >= 10", nodes[0].TableSize())
		}
	})
}

func TestNodeBootstrapNobody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := newMemNet()
		defer mn.close()
		n, err := New(Config{}, testKeyPair(t, 1), endpoint{mn, testAddr(1)})
		if err != nil {
			t.Fatal(err)
		}
		defer runNode(t, n)()
		err = n.Bootstrap(context.Background(), []netip.AddrPort{testAddr(2)})
		if !errors.Is(err, ErrNoContacts) {
			t.Fatalf("bootstrap to a silent address: %v, want ErrNoContacts", err)
		}
		if err := n.Provide(context.Background(), Key{1}); err == nil {
			t.Fatalf("provide with an empty table succeeded")
		}
	})
}

func TestNodeCancelAndStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := newMemNet()
		defer mn.close()
		n, err := New(Config{RequestTimeout: time.Hour}, testKeyPair(t, 1), endpoint{mn, testAddr(1)})
		if err != nil {
			t.Fatal(err)
		}
		stop := runNode(t, n)
		defer stop()
		// A contact that answers once, then falls silent, makes lookups
		// hang until cancelled.
		kp2 := testKeyPair(t, 2)
		peer, err := New(Config{}, kp2, endpoint{mn, testAddr(2)})
		if err != nil {
			t.Fatal(err)
		}
		stopPeer := runNode(t, peer)
		mn.mu.Lock()
		mn.nodes[testAddr(1)], mn.keys[testAddr(1)] = n, testKeyPair(t, 1).Public()
		mn.nodes[testAddr(2)], mn.keys[testAddr(2)] = peer, kp2.Public()
		mn.mu.Unlock()
		if err := n.Bootstrap(context.Background(), []netip.AddrPort{testAddr(2)}); err != nil {
			t.Fatalf("bootstrap: %v", err)
		}
		stopPeer()
		mn.mu.Lock()
		delete(mn.nodes, testAddr(2))
		mn.mu.Unlock()
		synctest.Wait()
		if n.TableSize() != 1 {
			t.Fatalf("table has %d nodes after a bootstrap through one, want 1", n.TableSize())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		err = n.Provide(ctx, Key{1})
		if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("provide with a 1-minute context: %v, want canceled by deadline", err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Fatalf("provide returned after %v, want 1m", d)
		}
		// A FindProviders whose context ends is closed, at that moment.
		fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer fcancel()
		start = time.Now()
		for p := range n.FindProviders(fctx, Key{4}) {
			t.Fatalf("found %v with only a silent contact", p.ID.Short())
		}
		if d := time.Since(start); d != 30*time.Second {
			t.Fatalf("FindProviders channel closed after %v, want 30s", d)
		}
		// A pending FindProviders ends when Run returns.
		ch := n.FindProviders(context.Background(), Key{2})
		stop()
		if _, open := <-ch; open {
			t.Fatalf("FindProviders channel open after Run returned")
		}
		if err := n.Provide(context.Background(), Key{3}); !errors.Is(err, ErrClosed) {
			t.Fatalf("provide after Run returned: %v, want ErrClosed", err)
		}
		if err := n.Run(context.Background()); err == nil {
			t.Fatalf("second Run returned nil, want an error")
		}
	})
}
