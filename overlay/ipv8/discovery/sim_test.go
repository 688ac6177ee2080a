package discovery

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// sim is a deterministic discrete-event network of Cores: one seed
// decides every key, delay, loss and choice, so a failure replays.
type sim struct {
	t     *testing.T
	rng   *rand.Rand
	now   time.Time
	nodes map[netip.AddrPort]*simNode
	order []*simNode
	queue eventHeap
	seq   int
	loss  float64
	delay time.Duration
	cfg   Config
}

type simNode struct {
	addr netip.AddrPort
	key  identity.PublicKey
	core *Core
	down bool
}

type simEvent struct {
	at   time.Time
	seq  int
	to   *simNode
	msg  *ipv8.Message // nil: a tick
	tick bool
}

type eventHeap []simEvent

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(simEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newSim(t *testing.T, seed uint64, size int, cfg Config, loss float64, delay time.Duration) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, 1)), now: time.Unix(1_700_000_000, 0),
		nodes: map[netip.AddrPort]*simNode{}, loss: loss, delay: delay, cfg: cfg}
	addr := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), 7000)
	}
	cfg.Bootstrap = []netip.AddrPort{addr(0)}
	for i := range size {
		var raw [64]byte
		for j := range raw {
			raw[j] = byte(s.rng.Uint32())
		}
		kp, err := identity.ParseSecretKey(append([]byte("LibNaCLSK:"), raw[:]...))
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.LANAddress = addr(i)
		core, err := NewCore(kp.Public(), c, rand.New(rand.NewPCG(seed, uint64(i)+2)))
		if err != nil {
			t.Fatal(err)
		}
		n := &simNode{addr: addr(i), key: kp.Public(), core: core}
		s.nodes[n.addr] = n
		s.order = append(s.order, n)
		// Stagger the first ticks so nodes do not move in lock step.
		s.push(simEvent{at: s.now.Add(time.Duration(s.rng.Int64N(int64(cfg.WalkInterval)))), to: n, tick: true})
	}
	return s
}

func (s *sim) push(e simEvent) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.queue, e)
}

// apply sends out's datagrams from n and checks n's invariants.
func (s *sim) apply(n *simNode, out output) {
	for _, snd := range out.Sends {
		if Framing(snd.MsgID) == ipv8.FramingUnknown {
			s.t.Fatalf("node %s sent message %d, which the walk does not speak", n.addr, snd.MsgID)
		}
		to := s.nodes[snd.To]
		if to == nil || s.rng.Float64() < s.loss {
			continue
		}
		m := &ipv8.Message{From: n.addr, Community: s.cfg.Community, ID: snd.MsgID, Signed: !snd.Unsigned,
			Payload: append([]byte(nil), snd.Payload...)}
		if m.Signed {
			m.Key = n.key
		}
		jitter := time.Duration(s.rng.Int64N(int64(s.delay)/4 + 1))
		s.push(simEvent{at: s.now.Add(s.delay + jitter), to: to, msg: m})
	}
	s.check(n)
}

// check asserts the table invariants of one node.
func (s *sim) check(n *simNode) {
	c := n.core
	if len(c.peers) > c.cfg.MaxPeers {
		s.t.Fatalf("%s: %d peers, max %d", n.addr, len(c.peers), c.cfg.MaxPeers)
	}
	if len(c.walkable) > c.cfg.MaxWalkable {
		s.t.Fatalf("%s: %d walkable addresses, max %d", n.addr, len(c.walkable), c.cfg.MaxWalkable)
	}
	if len(c.byKey) != len(c.peers) {
		s.t.Fatalf("%s: key index has %d entries, table %d", n.addr, len(c.byKey), len(c.peers))
	}
	for a, p := range c.peers {
		if a == n.addr || p.Key == n.key {
			s.t.Fatalf("%s lists itself", n.addr)
		}
		if c.bootstrap[a] != p.Bootstrap {
			s.t.Fatalf("%s: peer %s flagged bootstrap %v, is a bootstrap address %v", n.addr, a, p.Bootstrap, c.bootstrap[a])
		}
		if c.byKey[p.Key] != a {
			s.t.Fatalf("%s: key index disagrees for %s", n.addr, a)
		}
	}
}

// run processes events until the simulated clock passes until.
func (s *sim) run(until time.Time) {
	for s.queue.Len() > 0 && !s.queue[0].at.After(until) {
		e := heap.Pop(&s.queue).(simEvent)
		s.now = e.at
		if e.to.down {
			continue
		}
		if e.tick {
			out := tick(e.to.core, s.now)
			s.apply(e.to, out)
			s.push(simEvent{at: out.Deadline, to: e.to, tick: true})
			continue
		}
		s.apply(e.to, handle(e.to.core, s.now, e.msg))
	}
	s.now = until
}

func (s *sim) runUntil(limit time.Duration, cond func() error) (time.Duration, error) {
	start := s.now
	for s.now.Sub(start) < limit {
		s.run(s.now.Add(100 * time.Millisecond))
		if cond() == nil {
			return s.now.Sub(start), nil
		}
	}
	return limit, cond()
}

func (s *sim) allAtTarget() error {
	for _, n := range s.order {
		if !n.down && n.core.NumPeers() < s.cfg.TargetPeers {
			return fmt.Errorf("%s has %d peers, target %d", n.addr, n.core.NumPeers(), s.cfg.TargetPeers)
		}
	}
	return nil
}

// TestSimulatedWorld runs the real timings of py-ipv8 (0.5 s walk, 3 s
// timeout, 27.5 s ping, 57.5 s drop) in simulated time. SHOAL_LONG=1 adds
// 300- and 1,000-node lossy worlds.
func TestSimulatedWorld(t *testing.T) {
	tests := []struct {
		name  string
		seed  uint64
		size  int
		loss  float64
		delay time.Duration
	}{
		{"200 nodes clean", 1, 200, 0, 5 * time.Millisecond},
		{"100 nodes 5% loss 50ms", 2, 100, 0.05, 50 * time.Millisecond},
		{"40 nodes", 3, 40, 0.02, 20 * time.Millisecond},
	}
	if os.Getenv("SHOAL_LONG") != "" {
		tests = append(tests, struct {
			name  string
			seed  uint64
			size  int
			loss  float64
			delay time.Duration
		}{"300 nodes 5% loss 50ms", 5, 300, 0.05, 50 * time.Millisecond},
			struct {
				name  string
				seed  uint64
				size  int
				loss  float64
				delay time.Duration
			}{"1000 nodes 5% loss 50ms", 4, 1000, 0.05, 50 * time.Millisecond})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := Config{}.populate()
			s := newSim(t, tc.seed, tc.size, cfg, tc.loss, tc.delay)
			took, err := s.runUntil(5*time.Minute, s.allAtTarget)
			if err != nil {
				t.Fatalf("seed %d: not converged after %v: %v", tc.seed, took, err)
			}
			t.Logf("converged in %v of simulated time", took)

			// Take down a quarter of the nodes (never the bootstrap node).
			var downs []*simNode
			for i, n := range s.order {
				if i > 0 && i%4 == 0 {
					n.down = true
					downs = append(downs, n)
				}
			}
			took, err = s.runUntil(2*cfg.DropAfter, func() error {
				for _, n := range s.order {
					if n.down {
						continue
					}
					for _, d := range downs {
						if _, ok := n.core.peers[d.addr]; ok {
							return fmt.Errorf("%s still lists %s", n.addr, d.addr)
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("seed %d: stopped nodes not dropped: %v", tc.seed, err)
			}
			if took > cfg.DropAfter+cfg.WalkInterval+time.Second {
				t.Errorf("dropping took %v, churn timeout is %v", took, cfg.DropAfter)
			}
			if _, err := s.runUntil(5*time.Minute, s.allAtTarget); err != nil {
				t.Fatalf("seed %d: survivors did not refill: %v", tc.seed, err)
			}
		})
	}
}

// TestSimulationReplays: one seed, one outcome. A failing seed must be
// replayable.
func TestSimulationReplays(t *testing.T) {
	fingerprint := func() string {
		cfg, _ := Config{}.populate()
		s := newSim(t, 11, 60, cfg, 0.05, 30*time.Millisecond)
		s.run(s.now.Add(40 * time.Second))
		out := ""
		for _, n := range s.order {
			peers := make([]netip.AddrPort, 0)
			for a := range n.core.peers {
				peers = append(peers, a)
			}
			sortAddrs(peers)
			out += fmt.Sprintf("%s %v %+v\n", n.addr, peers, n.core.Stats())
		}
		return out
	}
	a, b := fingerprint(), fingerprint()
	if a != b {
		t.Errorf("two runs from seed 11 differ:\n%s\n---\n%s", a, b)
	}
}
