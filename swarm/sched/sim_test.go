package sched

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// A tiny fake network for the scheduler: peers with a rate, a latency and a
// behaviour, serving requests one after another (a pipe), all on a virtual
// clock. Everything derives from one seed, so a failure replays from it.

var epoch = time.Unix(1_700_000_000, 0)

type simPeer struct {
	id      PeerID
	rate    float64       // bytes/s
	lat     time.Duration // one way
	holds   []bool        // chunks the peer really has
	told    []bool        // chunks announced to the scheduler
	lie     float64       // probability a served chunk is corrupt
	busy    float64       // probability a request is refused as busy
	forget  float64       // probability a request is answered not-found
	stall   bool          // accepts requests, never answers
	join    time.Duration
	leave   time.Duration // 0: never
	freeAt  time.Time
	live    bool
	left    bool
	banned  bool
	badSent int
	served  int
}

// honest reports whether the peer serves every announced chunk correctly
// for the whole run (perhaps slowly, perhaps after busy refusals).
func (p *simPeer) honest() bool {
	return p.lie == 0 && !p.stall && p.leave == 0 && p.forget == 0
}

type evKind int

const (
	evJoin evKind = iota
	evLeave
	evAnswer // a request's outcome reaches the downloader
	evHave
	evFocus // readers steer the download (focus_test.go)
)

type simEvent struct {
	at    time.Time
	seq   int
	kind  evKind
	peer  int
	chunk int
	req   int // request serial for evAnswer
	fail  Reason
	bad   bool
}

type evQueue []simEvent

func (q evQueue) Len() int { return len(q) }
func (q evQueue) Less(i, j int) bool {
	return q[i].at.Before(q[j].at) || q[i].at.Equal(q[j].at) && q[i].seq < q[j].seq
}
func (q evQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *evQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *evQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type outKey struct {
	peer  int
	chunk int
}

type world struct {
	t        testing.TB
	seed     uint64
	rng      *rand.Rand
	lay      Layout
	cfg      Config
	s        *Scheduler
	peers    []*simPeer
	byID     map[PeerID]int
	q        evQueue
	seq      int
	now      time.Time
	out      map[outKey]int // outstanding request serial, as the actions say
	serial   int
	verified []int // times ChunkOK returned true, per chunk
	resumed  []bool
	late     float64 // probability a cancelled request still answers
	steps    int
	doneSeen bool
	acts     []Action
	history  []Action   // every action, in order (fixed worlds only)
	frng     *rand.Rand // focus events (a stream of its own: other draws stay as they were)
	record   bool
}

func (w *world) push(e simEvent) {
	w.seq++
	e.seq = w.seq
	heap.Push(&w.q, e)
}

func (w *world) fail(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf("seed %d, step %d, t=%v: %s\n%v", w.seed, w.steps, w.now.Sub(epoch), fmt.Sprintf(format, args...), w.s)
}

func (w *world) complete(st int) bool {
	start, d := w.lay.StripeStart(st), w.lay.StripeData(st)
	v := 0
	for c := start; c < start+d+w.lay.M; c++ {
		if w.verified[c] > 0 || w.resumed[c] {
			v++
		}
	}
	return v >= d
}

// drain takes the scheduler's actions, checks them and plays them on the
// fake network, then checks the internal invariants.
func (w *world) drain() {
	w.t.Helper()
	w.steps++
	w.acts, _ = w.s.Ready(w.acts[:0])
	if w.record {
		w.history = append(w.history, w.acts...)
	}
	for _, a := range w.acts {
		switch a.Kind {
		case Request:
			w.request(a)
		case Cancel:
			i, ok := w.byID[a.Peer]
			k := outKey{i, a.Chunk}
			if !ok {
				w.fail("cancel for unknown peer %v", a.Peer)
			}
			if _, ok := w.out[k]; !ok {
				w.fail("cancel of %v, which is not outstanding", a)
			}
			delete(w.out, k)
		case Ban:
			w.peers[w.byID[a.Peer]].banned = true
			for k := range w.out {
				if k.peer == w.byID[a.Peer] {
					w.fail("ban of %v with request for chunk %d not cancelled", a.Peer, k.chunk)
				}
			}
		case Penalise:
		case DecodeStripe:
			if !w.complete(a.Stripe) {
				w.fail("decode of incomplete stripe %d", a.Stripe)
			}
		case Done:
			if w.doneSeen {
				w.fail("second Done")
			}
			for st := range w.lay.Stripes() {
				if !w.complete(st) {
					w.fail("Done with stripe %d incomplete", st)
				}
			}
			w.doneSeen = true
		default:
			w.fail("unknown action %v", a)
		}
	}
	if len(w.out) != w.s.nreqs {
		w.fail("actions leave %d requests outstanding, scheduler tracks %d", len(w.out), w.s.nreqs)
	}
	if err := checkInternal(w.s); err != nil {
		w.fail("invariant: %v", err)
	}
}

func (w *world) request(a Action) {
	i, ok := w.byID[a.Peer]
	if !ok {
		w.fail("request to unknown peer %v", a.Peer)
	}
	p := w.peers[i]
	switch {
	case !p.live:
		w.fail("request %v to a peer that is not connected", a)
	case p.banned:
		w.fail("request %v to a banned peer", a)
	case !p.told[a.Chunk]:
		w.fail("request %v for a chunk the peer never announced", a)
	case w.verified[a.Chunk] > 0 || w.resumed[a.Chunk]:
		w.fail("request %v for a verified chunk", a)
	}
	w.checkFocusRequest(a)
	st, _ := w.lay.StripeOf(a.Chunk)
	if w.complete(st) {
		w.fail("request %v in complete stripe %d", a, st)
	}
	k := outKey{i, a.Chunk}
	if _, dup := w.out[k]; dup {
		w.fail("second outstanding request %v", a)
	}
	w.serial++
	w.out[k] = w.serial
	e := simEvent{kind: evAnswer, peer: i, chunk: a.Chunk, req: w.serial}
	switch {
	case p.stall:
		return
	case w.rng.Float64() < p.busy:
		e.at, e.fail = w.now.Add(2*p.lat), Busy
	case !p.holds[a.Chunk] || w.rng.Float64() < p.forget:
		e.at, e.fail = w.now.Add(2*p.lat), NotFound
	default:
		size := w.lay.ChunkBytes(a.Chunk)
		start := w.now.Add(p.lat)
		if p.freeAt.After(start) {
			start = p.freeAt
		}
		fin := start.Add(time.Duration(float64(size) / p.rate * float64(time.Second)))
		p.freeAt = fin
		e.at, e.bad = fin.Add(p.lat), w.rng.Float64() < p.lie
	}
	w.push(e)
}

// step runs the next event or timer; it reports false when nothing is left.
func (w *world) step() bool {
	dl := w.s.deadline()
	if len(w.q) == 0 && dl.IsZero() {
		return false
	}
	if !dl.IsZero() && (len(w.q) == 0 || dl.Before(w.q[0].at)) {
		if dl.After(w.now) {
			w.now = dl
		}
		w.s.Tick(w.now)
		w.drain()
		return true
	}
	e := heap.Pop(&w.q).(simEvent)
	w.now = e.at
	var p *simPeer
	if e.kind != evFocus {
		p = w.peers[e.peer]
	}
	switch e.kind {
	case evJoin:
		p.live = true
		bm := make([]byte, (w.lay.Chunks()+7)/8)
		for c, ok := range p.told {
			if ok {
				bm[c/8] |= 1 << (c % 8)
			}
		}
		w.s.PeerJoined(w.now, p.id, bm)
	case evFocus:
		w.focusStep()
		w.drain()
		return true
	case evHave:
		if !p.live {
			return true
		}
		p.holds[e.chunk], p.told[e.chunk] = true, true
		w.s.Have(w.now, p.id, e.chunk)
	case evLeave:
		p.live, p.left = false, true
		first := true
		for k := range w.out {
			if k.peer != e.peer {
				continue
			}
			if first {
				w.s.RequestFailed(w.now, p.id, k.chunk, PeerGone)
				first = false
			}
			delete(w.out, k)
		}
		w.s.PeerLeft(w.now, p.id)
	case evAnswer:
		k := outKey{e.peer, e.chunk}
		if w.out[k] != e.req {
			// Cancelled (or replaced): the stream was reset. Sometimes the
			// answer races the cancel and arrives anyway.
			if !p.live || e.fail != 0 || e.bad || w.rng.Float64() >= w.late {
				return true
			}
			// The driver reports it as the answer to the newer request for
			// the same chunk at the same peer, if any, and closes that one.
			delete(w.out, k)
		} else {
			delete(w.out, k)
		}
		switch {
		case !p.live:
			return true
		case e.fail != 0:
			w.s.RequestFailed(w.now, p.id, e.chunk, e.fail)
		case e.bad:
			p.badSent++
			w.s.ChunkBad(w.now, p.id, e.chunk)
		default:
			p.served++
			size := w.lay.ChunkBytes(e.chunk)
			if w.s.ChunkOK(w.now, p.id, e.chunk, size, 0) {
				w.verified[e.chunk]++
				if w.verified[e.chunk] > 1 || w.resumed[e.chunk] {
					w.fail("chunk %d accepted as new twice", e.chunk)
				}
			}
		}
	}
	w.drain()
	return true
}

// newWorld builds a random world from seed.
func newWorld(t testing.TB, seed uint64) *world {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	w := &world{t: t, seed: seed, rng: rng, now: epoch, byID: map[PeerID]int{}, out: map[outKey]int{}}
	cs := 1 << (10 + rng.IntN(7)) // 1 KiB .. 64 KiB
	w.lay = Layout{
		Size:      int64(rng.IntN(300*cs + 1)),
		ChunkSize: cs,
		K:         1 + rng.IntN(8),
		M:         rng.IntN(5),
	}
	if rng.IntN(4) == 0 {
		w.cfg.MaxInflightBytes = int64(cs * (1 + rng.IntN(6)))
		w.cfg.MaxPeerInflightBytes = int64(cs * (1 + rng.IntN(3)))
	}
	w.cfg.MaxDuplicates = 1 + rng.IntN(3)
	w.cfg.MaxQueue = 1 + rng.IntN(16)
	w.cfg.InitialQueue = 1 + rng.IntN(w.cfg.MaxQueue)
	if rng.IntN(2) == 0 {
		w.cfg.MinTimeout = 100 * time.Millisecond
		w.cfg.InitialTimeout = 2 * time.Second
	}
	w.late = rng.Float64() * 0.3
	n := w.lay.Chunks()
	w.verified = make([]int, n)
	w.resumed = make([]bool, n)
	var resume []byte
	if rng.IntN(3) == 0 {
		resume = make([]byte, (n+7)/8)
		for c := range n {
			if rng.IntN(3) == 0 {
				resume[c/8] |= 1 << (c % 8)
				w.resumed[c] = true
			}
		}
	}
	npeers := rng.IntN(9)
	for i := range npeers {
		p := &simPeer{
			rate:  float64(cs) * (0.5 + rng.Float64()*100),
			lat:   time.Duration(1+rng.IntN(80)) * time.Millisecond,
			holds: make([]bool, n),
			told:  make([]bool, n),
		}
		p.id[0], p.id[1] = byte(i), byte(seed)
		full := rng.IntN(3) == 0
		for c := range n {
			if full || rng.IntN(2) == 0 {
				p.holds[c], p.told[c] = true, true
			}
		}
		switch rng.IntN(10) {
		case 0:
			p.lie = 1
		case 1:
			p.lie = 0.3
		case 2:
			p.stall = true
		case 3:
			p.busy = 0.3
		case 4:
			p.forget = 0.05
		case 5:
			p.rate = float64(cs) / 4 // very slow
		}
		if rng.IntN(4) == 0 {
			p.join = time.Duration(rng.IntN(5000)) * time.Millisecond
		}
		if rng.IntN(5) == 0 {
			p.leave = p.join + time.Duration(1+rng.IntN(5000))*time.Millisecond
		}
		w.peers = append(w.peers, p)
		w.byID[p.id] = i
		w.push(simEvent{at: epoch.Add(p.join), kind: evJoin, peer: i})
		if p.leave > 0 {
			w.push(simEvent{at: epoch.Add(p.leave), kind: evLeave, peer: i})
		}
		// Partial peers gain a few chunks later and announce them.
		for range rng.IntN(4) {
			c := rng.IntN(max(n, 1))
			if n > 0 && !p.holds[c] {
				w.push(simEvent{at: epoch.Add(p.join + time.Duration(rng.IntN(3000))*time.Millisecond), kind: evHave, peer: i, chunk: c})
			}
		}
	}
	s, err := New(w.lay, resume, w.cfg, rand.New(rand.NewPCG(seed, 1)))
	if err != nil {
		t.Fatalf("seed %d: New(%+v): %v", seed, w.lay, err)
	}
	w.s = s
	w.drain()
	w.planFocus(seed)
	return w
}

// fixedWorld builds a world with the given peers (ids, holdings, joins and
// leaves as set by the caller; told defaults to holds), recording every
// action in w.history.
func fixedWorld(t testing.TB, lay Layout, cfg Config, resume []byte, peers []*simPeer) *world {
	t.Helper()
	w := &world{t: t, seed: 1, rng: rand.New(rand.NewPCG(1, 2)), lay: lay, cfg: cfg,
		now: epoch, byID: map[PeerID]int{}, out: map[outKey]int{}, record: true}
	n := lay.Chunks()
	w.verified = make([]int, n)
	w.resumed = make([]bool, n)
	for c := range n {
		w.resumed[c] = hasByte(resume, c)
	}
	for i, p := range peers {
		if p.told == nil {
			p.told = slices.Clone(p.holds)
		}
		if p.lat == 0 {
			p.lat = time.Millisecond
		}
		w.peers = append(w.peers, p)
		w.byID[p.id] = i
		w.push(simEvent{at: epoch.Add(p.join), kind: evJoin, peer: i})
		if p.leave > 0 {
			w.push(simEvent{at: epoch.Add(p.leave), kind: evLeave, peer: i})
		}
	}
	s, err := New(lay, resume, cfg, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatalf("New(%+v): %v", lay, err)
	}
	w.s = s
	w.drain()
	return w
}

// holding returns a holdings slice of n chunks with the given ones set.
func holding(n int, chunks ...int) []bool {
	h := make([]bool, n)
	for _, c := range chunks {
		h[c] = true
	}
	return h
}

// all returns a holdings slice with every chunk.
func all(n int) []bool {
	h := make([]bool, n)
	for c := range h {
		h[c] = true
	}
	return h
}

// coverable reports whether the stable honest peers (never lying,
// stalling, forgetting or leaving; busy refusals and slowness allowed)
// together hold d_s chunks of every stripe, counting resumed chunks.
func (w *world) coverable() bool {
	for st := range w.lay.Stripes() {
		start, d := w.lay.StripeStart(st), w.lay.StripeData(st)
		v := 0
		for c := start; c < start+d+w.lay.M; c++ {
			ok := w.resumed[c]
			for _, p := range w.peers {
				ok = ok || p.honest() && p.told[c]
			}
			if ok {
				v++
			}
		}
		if v < d {
			return false
		}
	}
	return true
}

// run steps the world until Done, nothing is left to do, maxSteps or an
// hour of virtual time.
func (w *world) run(maxSteps int) {
	for w.steps < maxSteps && w.now.Sub(epoch) < time.Hour && w.step() {
		if w.doneSeen {
			break
		}
	}
}

func simSeeds() int {
	if v, err := strconv.Atoi(os.Getenv("SHOAL_SIM_SEEDS")); err == nil && v > 0 {
		return v
	}
	if os.Getenv("SHOAL_LONG") != "" {
		return 20000
	}
	if testing.Short() {
		return 50
	}
	return 600
}

// TestSimulation runs many seeded random worlds and checks the invariants
// after every step (see drain and checkInternal), that the download
// finishes whenever the stable honest peers can serve it, and that liars
// that sent enough bad chunks end banned. SHOAL_SIM_SEEDS=n or SHOAL_LONG=1
// run more seeds.
func TestSimulation(t *testing.T) {
	finished, coverableRuns, liarsBanned, steps, maxDone := 0, 0, 0, 0, 0
	for seed := range uint64(simSeeds()) {
		w := newWorld(t, seed)
		w.run(200_000)
		steps += w.steps
		if w.coverable() {
			coverableRuns++
			if !w.doneSeen {
				w.fail("honest peers cover every stripe but the download did not finish (%d events left)\n%s", len(w.q), w.s.dump())
			}
		}
		if w.doneSeen {
			finished++
			maxDone = max(maxDone, w.steps)
		}
		for _, p := range w.peers {
			if (p.badSent >= w.s.cfg.BanAfter || p.lie == 1 && p.badSent >= w.s.cfg.BanStreak) && !p.banned {
				w.fail("peer %v sent %d bad chunks and is not banned", p.id, p.badSent)
			}
			if p.banned {
				if p.lie == 0 {
					w.fail("honest peer %v banned", p.id)
				}
				liarsBanned++
			}
		}
	}
	t.Logf("%d seeds, %d steps: %d finished, %d coverable by honest peers, %d liars banned; longest finished run %d steps", simSeeds(), steps, finished, coverableRuns, liarsBanned, maxDone)
	if coverableRuns < simSeeds()/4 || liarsBanned == 0 {
		t.Errorf("simulation too weak: %d coverable runs, %d liars banned", coverableRuns, liarsBanned)
	}
}
