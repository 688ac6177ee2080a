package dhtsim

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/dht"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/zeebo/blake3"
)

// Epoch is the simulated time at which every Sim starts.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Config describes a simulated network. The zero value means defaults.
type Config struct {
	// Seed drives every random choice: keys, latencies, losses, churn.
	Seed uint64
	// MinLatency and MaxLatency bound the one-way delay of a message, drawn
	// uniformly. Defaults 10 ms and 150 ms.
	MinLatency, MaxLatency time.Duration
	// Loss is the probability that a message is dropped. Default 0.
	Loss float64
	// DHT configures every node. Default dht.SimConfig().
	DHT *dht.Config
}

// Result is what one lookup produced.
type Result struct {
	Providers []dht.Provider
	Closest   []dht.Contact
	Stats     dht.LookupStats
	Err       error
	Done      bool
}

// Node is one simulated DHT node.
type Node struct {
	Index int
	Key   *identity.KeyPair
	Addr  netip.AddrPort
	Core  *dht.Core
	Alive bool

	tickAt  time.Time
	results map[dht.LookupID]*Result
	acts    []dht.Action // reused by flush
	liar    bool         // see Sim.MakeLiar
}

// ID returns the node's Kademlia ID.
func (n *Node) ID() identity.PeerID { return n.Key.PeerID() }

// Result returns the result of lookup id so far (nil if unknown).
func (n *Node) Result(id dht.LookupID) *Result { return n.results[id] }

// Stats counts what the network did.
type Stats struct {
	Delivered uint64 // messages handed to a live node
	Lost      uint64 // messages dropped by Loss
	ToDead    uint64 // messages sent to a node that left
	Events    uint64 // events processed
}

// Sim is a simulated network.
type Sim struct {
	cfg     Config
	dhtCfg  dht.Config
	rng     *rand.Rand
	now     time.Time
	queue   eventQueue
	seq     uint64
	nodes   []*Node
	byAddr  map[netip.AddrPort]*Node
	trace   *blake3.Hasher
	scratch []byte
	stats   Stats
}

// New makes an empty simulated network.
func New(cfg Config) *Sim {
	if cfg.MinLatency == 0 {
		cfg.MinLatency = 10 * time.Millisecond
	}
	if cfg.MaxLatency == 0 {
		cfg.MaxLatency = 150 * time.Millisecond
	}
	dc := dht.SimConfig()
	if cfg.DHT != nil {
		dc = *cfg.DHT
	}
	return &Sim{cfg: cfg, dhtCfg: dc, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5e1f)), now: Epoch,
		byAddr: make(map[netip.AddrPort]*Node), trace: blake3.New()}
}

// Now returns the simulated time.
func (s *Sim) Now() time.Time { return s.now }

// Rand returns the simulator's random source, for tests that pick nodes or
// keys; using it is part of the trace.
func (s *Sim) Rand() *rand.Rand { return s.rng }

// Nodes returns every node ever added, in order, alive or not.
func (s *Sim) Nodes() []*Node { return s.nodes }

// Stats returns the network counters.
func (s *Sim) Stats() Stats { return s.stats }

// TraceHash returns a BLAKE3 hash of every event so far: deliveries (time,
// sender, receiver, payload), drops and lookup events.
func (s *Sim) TraceHash() [32]byte {
	var h [32]byte
	s.trace.Clone().Sum(h[:0])
	return h
}

// AddNode creates a node with a fresh key and address. It is alive but
// knows nobody until Join.
func (s *Sim) AddNode() *Node {
	i := len(s.nodes)
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], s.rng.Uint64())
	binary.LittleEndian.PutUint64(seed[8:], s.rng.Uint64())
	kp, err := identity.Generate(rand.NewChaCha8(seed))
	if err != nil {
		panic(fmt.Sprintf("dhtsim: generating key: %v", err)) // cannot fail with a ChaCha8 reader
	}
	ip := netip.AddrFrom4([4]byte{127, byte((i + 1) >> 16), byte((i + 1) >> 8), byte(i + 1)})
	addr := netip.AddrPortFrom(ip, 4000)
	cfg := s.dhtCfg
	cfg.Addrs = []netip.AddrPort{addr}
	core, err := dht.NewCore(cfg, kp, rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64())), s.now)
	if err != nil {
		panic(fmt.Sprintf("dhtsim: bad DHT config: %v", err))
	}
	n := &Node{Index: i, Key: kp, Addr: addr, Core: core, Alive: true, results: make(map[dht.LookupID]*Result)}
	s.nodes = append(s.nodes, n)
	s.byAddr[addr] = n
	s.flush(n)
	return n
}

// Join bootstraps n from the given nodes.
func (s *Sim) Join(n *Node, via []*Node) dht.LookupID {
	addrs := make([]netip.AddrPort, len(via))
	for i, v := range via {
		addrs[i] = v.Addr
	}
	id := n.Core.Bootstrap(s.now, addrs)
	s.flush(n)
	return id
}

// Kill makes n leave silently: it stops answering and sends nothing more.
func (s *Sim) Kill(n *Node) {
	n.Alive = false
	s.hashEvent('K', n.Addr, n.Addr, nil)
}

// Provide starts a Provide of key at n.
func (s *Sim) Provide(n *Node, key dht.Key) dht.LookupID {
	id := n.Core.Provide(s.now, key)
	s.flush(n)
	return id
}

// FindProviders starts a provider lookup of key at n.
func (s *Sim) FindProviders(n *Node, key dht.Key) dht.LookupID {
	id := n.Core.FindProviders(s.now, key)
	s.flush(n)
	return id
}

// Deliver hands payload to n as if from (addr, key), now. Tests use it to
// inject bad input.
func (s *Sim) Deliver(n *Node, from netip.AddrPort, key identity.PublicKey, payload []byte) {
	s.hashEvent('I', from, n.Addr, payload)
	n.Core.HandleMessage(s.now, from, key, payload)
	s.flush(n)
}

// Done reports whether lookup id of n has finished.
func (n *Node) Done(id dht.LookupID) bool {
	r := n.results[id]
	return r != nil && r.Done
}

// RunUntil processes events until the simulated time reaches t or nothing
// is left to do.
func (s *Sim) RunUntil(t time.Time) {
	for s.queue.Len() > 0 && !s.queue[0].at.After(t) {
		s.stepOne()
	}
	if s.now.Before(t) {
		s.now = t
	}
}

// RunWhile processes events while cond holds, up to the simulated time
// limit. It reports whether cond turned false.
func (s *Sim) RunWhile(limit time.Time, cond func() bool) bool {
	for cond() {
		if s.queue.Len() == 0 || s.queue[0].at.After(limit) {
			return false
		}
		s.stepOne()
	}
	return true
}

func (s *Sim) stepOne() {
	ev := heap.Pop(&s.queue).(*event)
	s.now = ev.at
	s.stats.Events++
	n := ev.node
	switch ev.kind {
	case evTick:
		if !n.Alive || !n.tickAt.Equal(ev.at) {
			return // stale or departed
		}
		n.tickAt = time.Time{}
		n.Core.Tick(s.now)
		s.flush(n)
	case evDeliver:
		if !n.Alive {
			s.stats.ToDead++
			return
		}
		s.stats.Delivered++
		s.hashEvent('D', ev.from.Addr, n.Addr, ev.payload)
		if n.liar {
			s.lie(n, ev)
			return
		}
		n.Core.HandleMessage(s.now, ev.from.Addr, ev.from.Key.Public(), ev.payload)
		s.flush(n)
	}
}

// flush takes n's output: messages become deliveries, events become
// results, and n's next tick is scheduled.
func (s *Sim) flush(n *Node) {
	var next time.Time
	n.acts, next = n.Core.Ready(n.acts[:0])
	for _, a := range n.acts {
		switch a.Kind {
		case dht.ActionSend:
			if !n.Alive {
				continue
			}
			to := s.byAddr[a.Send.To]
			if to == nil {
				s.stats.ToDead++
				continue
			}
			s.deliverLater(n, to, a.Send.Payload)
		case dht.ActionEvent:
			e := a.Event
			r := n.results[e.Lookup]
			if r == nil {
				r = &Result{}
				n.results[e.Lookup] = r
			}
			switch e.Kind {
			case dht.EventProvider:
				r.Providers = append(r.Providers, e.Provider)
				s.hashEvent('P', n.Addr, n.Addr, e.Provider.ID[:])
			case dht.EventDone:
				r.Done, r.Stats, r.Err, r.Closest = true, e.Stats, e.Err, e.Closest
				var b [8]byte
				binary.BigEndian.PutUint64(b[:], uint64(e.Stats.Requests)<<32|uint64(e.Stats.Hops))
				s.hashEvent('E', n.Addr, n.Addr, b[:])
			}
		}
	}
	clear(n.acts)
	if !n.Alive {
		return
	}
	if d := next; !d.IsZero() && !d.Equal(n.tickAt) {
		if d.Before(s.now) {
			d = s.now
		}
		n.tickAt = d
		s.push(&event{at: d, kind: evTick, node: n})
	}
}

// deliverLater schedules payload from -> to after a random latency, unless
// it is lost.
func (s *Sim) deliverLater(from, to *Node, payload []byte) {
	if s.cfg.Loss > 0 && s.rng.Float64() < s.cfg.Loss {
		s.stats.Lost++
		s.hashEvent('L', from.Addr, to.Addr, payload)
		return
	}
	lat := s.cfg.MinLatency
	if span := s.cfg.MaxLatency - s.cfg.MinLatency; span > 0 {
		lat += time.Duration(s.rng.Int64N(int64(span)))
	}
	s.push(&event{at: s.now.Add(lat), kind: evDeliver, node: to, from: from, payload: payload})
}

func (s *Sim) push(ev *event) {
	s.seq++
	ev.seq = s.seq
	heap.Push(&s.queue, ev)
}

func (s *Sim) hashEvent(kind byte, from, to netip.AddrPort, payload []byte) {
	b := s.scratch[:0]
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, uint64(s.now.Sub(Epoch)))
	b, _ = from.AppendBinary(b)
	b, _ = to.AppendBinary(b)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	s.trace.Write(b)
	s.scratch = b
}

type evKind uint8

const (
	evTick evKind = iota + 1
	evDeliver
)

type event struct {
	at      time.Time
	seq     uint64
	kind    evKind
	node    *Node
	from    *Node
	payload []byte
}

// eventQueue orders events by time, then by the order they were scheduled.
type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if c := q[i].at.Compare(q[j].at); c != 0 {
		return c < 0
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	n := len(old)
	ev := old[n-1]
	old[n-1] = nil
	*q = old[:n-1]
	return ev
}
