package dhtsim

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/dht"
)

// nodesFor returns the network size for a test: def by default, long when
// SHOAL_LONG=1, or DHTSIM_NODES when set.
func nodesFor(def, long int) int {
	if v, err := strconv.Atoi(os.Getenv("DHTSIM_NODES")); err == nil && v > 0 {
		return v
	}
	if os.Getenv("SHOAL_LONG") == "1" {
		return long
	}
	return def
}

func randContent(s *Sim) dht.Key {
	var k dht.Key
	for i := range k {
		k[i] = byte(s.Rand().Uint32())
	}
	return k
}

type lookupFigures struct {
	n, ok            int
	hops, reqs, msgs []int
	medHops, p99Hops int
	medMsgs, p99Msgs int
}

func (f *lookupFigures) add(r *Result) {
	f.n++
	if r != nil && r.Done && len(r.Providers) > 0 {
		f.ok++
		f.hops = append(f.hops, r.Stats.Hops)
		f.reqs = append(f.reqs, r.Stats.Requests)
		f.msgs = append(f.msgs, r.Stats.Requests+r.Stats.Replies)
	}
}

func pct(xs []int, p float64) int {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

func (f *lookupFigures) String() string {
	return "ok " + strconv.Itoa(f.ok) + "/" + strconv.Itoa(f.n) +
		", hops median " + strconv.Itoa(pct(f.hops, 0.5)) + " p99 " + strconv.Itoa(pct(f.hops, 0.99)) +
		", requests/lookup median " + strconv.Itoa(pct(f.reqs, 0.5)) + " p99 " + strconv.Itoa(pct(f.reqs, 0.99)) +
		", messages/lookup (requests+replies) median " + strconv.Itoa(pct(f.msgs, 0.5)) + " p99 " + strconv.Itoa(pct(f.msgs, 0.99))
}

// scenario builds a network of n nodes, provides `keys` content IDs from
// random nodes, optionally churns `churn` of the other nodes (leave, and as
// many join), then looks each key up from `lookups` random live nodes.
type scenario struct {
	seed    uint64
	nodes   int
	keys    int
	lookups int
	churn   float64
	loss    float64
	// joinRefresh turns on Kademlia's join refresh (the default outside
	// simulation); it costs about ten lookups per joining node.
	joinRefresh bool
	// liars is the fraction of nodes made liars (Sim.MakeLiar) before the
	// provides; providers and askers are honest.
	liars float64
}

type outcome struct {
	figures   lookupFigures // before churn
	churned   lookupFigures // after churn, if any
	provided  int
	stored    []int
	trace     [32]byte
	stats     Stats
	buildTime time.Duration
	badSigs   uint64 // forged records refused by honest nodes
}

func honest(ns []*Node) []*Node {
	var out []*Node
	for _, n := range ns {
		if !n.liar {
			out = append(out, n)
		}
	}
	return out
}

func run(t testing.TB, sc scenario) outcome {
	t.Helper()
	dc := dht.SimConfig()
	dc.NoJoinRefresh = !sc.joinRefresh
	s := New(Config{Seed: sc.seed, Loss: sc.loss, DHT: &dc})
	if _, err := s.Grow(sc.nodes, 20*time.Millisecond); err != nil {
		t.Fatalf("building %d nodes: %v", sc.nodes, err)
	}
	var out outcome
	out.buildTime = s.Now().Sub(Epoch)
	for range int(sc.liars * float64(sc.nodes)) {
		n := s.nodes[s.Rand().IntN(len(s.nodes))]
		s.MakeLiar(n)
	}
	// Provide.
	alive := honest(s.Alive())
	keys := make([]dht.Key, sc.keys)
	providers := make([]*Node, sc.keys)
	ids := make([]dht.LookupID, sc.keys)
	for i := range keys {
		keys[i] = randContent(s)
		providers[i] = alive[s.Rand().IntN(len(alive))]
		ids[i] = s.Provide(providers[i], keys[i])
	}
	if !s.Wait(time.Hour, providers, ids) {
		t.Fatalf("provides did not finish in an hour of simulated time")
	}
	for i, p := range providers {
		r := p.Result(ids[i])
		if r.Err != nil {
			t.Fatalf("provide %d from node %d: %v", i, p.Index, r.Err)
		}
		out.stored = append(out.stored, r.Stats.Stored)
		out.provided++
	}
	lookups := func() lookupFigures {
		alive := honest(s.Alive())
		var askers []*Node
		var lids []dht.LookupID
		for i := range sc.lookups {
			n := alive[s.Rand().IntN(len(alive))]
			askers = append(askers, n)
			lids = append(lids, s.FindProviders(n, keys[i%len(keys)]))
		}
		if !s.Wait(time.Hour, askers, lids) {
			t.Fatalf("lookups did not finish in an hour of simulated time")
		}
		var f lookupFigures
		for i, n := range askers {
			f.add(n.Result(lids[i]))
		}
		return f
	}
	out.figures = lookups()
	// Churn: a fraction of the non-providers leave, as many new nodes join,
	// and everything is looked up again.
	if sc.churn > 0 {
		isProvider := make(map[*Node]bool)
		for _, p := range providers {
			isProvider[p] = true
		}
		leave := int(sc.churn * float64(len(alive)))
		for killed := 0; killed < leave; {
			n := alive[s.Rand().IntN(len(alive))]
			if n.Alive && !isProvider[n] {
				s.Kill(n)
				killed++
			}
		}
		if _, err := s.Grow(leave, 5*time.Millisecond); err != nil {
			t.Fatalf("joining %d nodes after churn: %v", leave, err)
		}
		out.churned = lookups()
	}
	alive = honest(s.Alive())
	for _, n := range alive {
		out.badSigs += n.Core.Counters().BadSignatures
	}
	out.trace = s.TraceHash()
	out.stats = s.Stats()
	return out
}

func TestSameSeedSameTrace(t *testing.T) {
	t.Parallel()
	sc := scenario{seed: 42, nodes: 150, keys: 5, lookups: 20, churn: 0.2, loss: 0.01}
	a := run(t, sc)
	b := run(t, sc)
	if a.trace != b.trace {
		t.Fatalf("two runs with seed %d gave different traces: %x vs %x", sc.seed, a.trace, b.trace)
	}
	sc.seed = 43
	c := run(t, sc)
	if a.trace == c.trace {
		t.Fatalf("seeds 42 and 43 gave the same trace %x", a.trace)
	}
	if a.stats.Delivered == 0 {
		t.Fatalf("no message was delivered")
	}
}

// TestLookupsAndChurn builds one 2,000-node world with 1% loss. Every
// lookup of a provided ID finds a provider; then 20% of the nodes leave and
// as many join, and at least 99% of lookups still find one.
func TestLookupsAndChurn(t *testing.T) {
	t.Parallel()
	n := nodesFor(2000, 2000)
	sc := scenario{seed: 1, nodes: n, keys: 50, lookups: 500, churn: 0.2, loss: 0.01}
	start := time.Now()
	o := run(t, sc)
	t.Logf("%d nodes, 1%% loss: %v (stored on median %d nodes)", n, &o.figures, pct(o.stored, 0.5))
	t.Logf("after 20%% left and as many joined: %v", &o.churned)
	t.Logf("%d messages delivered, %d lost, %d to departed nodes; wall %v",
		o.stats.Delivered, o.stats.Lost, o.stats.ToDead, time.Since(start).Round(time.Millisecond))
	if o.figures.ok != o.figures.n {
		t.Fatalf("%d of %d lookups found no provider before churn", o.figures.n-o.figures.ok, o.figures.n)
	}
	if o.churned.ok*100 < o.churned.n*99 {
		t.Fatalf("only %d of %d lookups found a provider after churn, want >= 99%%", o.churned.ok, o.churned.n)
	}
}

// TestLookupsWithJoinRefresh runs the default join (with bucket refresh) on
// a smaller network.
func TestLookupsWithJoinRefresh(t *testing.T) {
	t.Parallel()
	n := nodesFor(100, 2000)
	sc := scenario{seed: 3, nodes: n, keys: 20, lookups: 200, churn: 0.2, joinRefresh: true}
	o := run(t, sc)
	t.Logf("%d nodes, join refresh: %v; after 20%% churn: %v", n, &o.figures, &o.churned)
	if o.figures.ok != o.figures.n || o.churned.ok*100 < o.churned.n*99 {
		t.Fatalf("lookups that found a provider: %d of %d before churn (want all), %d of %d after (want >= 99%%)",
			o.figures.ok, o.figures.n, o.churned.ok, o.churned.n)
	}
}

// TestRepublishAndExpiry: with a 1-hour record lifetime, content still
// provided is found after 3 hours (republished every 30 minutes); content
// no longer provided is not (its records expired).
func TestRepublishAndExpiry(t *testing.T) {
	t.Parallel()
	dc := dht.SimConfig()
	dc.RecordTTL = time.Hour
	dc.RefreshInterval = 24 * time.Hour // bucket refreshes are not under test here
	s := New(Config{Seed: 7, DHT: &dc})
	if _, err := s.Grow(100, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	nodes := s.Alive()
	p := nodes[10]
	kept, dropped := randContent(s), randContent(s)
	ids := []dht.LookupID{s.Provide(p, kept), s.Provide(p, dropped)}
	if !s.Wait(time.Minute, []*Node{p, p}, ids) {
		t.Fatalf("provides did not finish")
	}
	p.Core.StopProviding(dropped)
	s.RunUntil(s.Now().Add(3 * time.Hour))
	stored := 0
	for _, n := range nodes {
		stored += n.Core.StoredRecords()
	}
	if stored < 10 || stored > 2*20 {
		t.Fatalf("%d records stored across the network after 3 h, want the kept one on 10..40 nodes", stored)
	}
	for _, tc := range []struct {
		name string
		key  dht.Key
		want bool
	}{{"still provided", kept, true}, {"no longer provided", dropped, false}} {
		var askers []*Node
		var lids []dht.LookupID
		for i := range 10 {
			n := nodes[30+i]
			askers = append(askers, n)
			lids = append(lids, s.FindProviders(n, tc.key))
		}
		if !s.Wait(time.Minute, askers, lids) {
			t.Fatalf("%s: lookups did not finish", tc.name)
		}
		for i, n := range askers {
			found := len(n.Result(lids[i]).Providers) > 0
			if found != tc.want {
				t.Fatalf("%s: node %d found a provider = %v, want %v", tc.name, n.Index, found, tc.want)
			}
		}
	}
}

// BenchmarkSim10k builds 10,000 nodes with 1% loss, provides 100 IDs, looks
// each up five times, churns 20% and looks them up again. Run with: go test -run '^$' -bench Sim10k -benchtime 1x ./internal/dhtsim/
func BenchmarkSim10k(b *testing.B) {
	for b.Loop() {
		o := run(b, scenario{seed: 10, nodes: 10000, keys: 100, lookups: 500, churn: 0.2, loss: 0.01})
		if o.figures.ok != o.figures.n || o.churned.ok*100 < o.churned.n*99 {
			b.Fatalf("lookups that found a provider: %d of %d before churn, %d of %d after", o.figures.ok, o.figures.n, o.churned.ok, o.churned.n)
		}
		b.ReportMetric(float64(pct(o.churned.hops, 0.5)), "hops-median")
		b.ReportMetric(float64(pct(o.churned.hops, 0.99)), "hops-p99")
		b.ReportMetric(float64(pct(o.churned.reqs, 0.5)), "requests-median")
		b.ReportMetric(float64(pct(o.churned.reqs, 0.99)), "requests-p99")
		b.ReportMetric(float64(pct(o.churned.msgs, 0.5)), "msgs-median")
		b.Logf("10000 nodes, 1%% loss: %v", &o.figures)
		b.Logf("after 20%% left and as many joined: %v", &o.churned)
	}
}

// TestLookupsWithLiars: 10% of the nodes answer lookups with forged records
// and made-up contacts close to the target, and swallow stores. At least
// 99% of lookups still find the real provider, and the forged records are
// refused and counted.
func TestLookupsWithLiars(t *testing.T) {
	t.Parallel()
	n := nodesFor(500, 2000)
	sc := scenario{seed: 4, nodes: n, keys: 30, lookups: 300, liars: 0.1}
	o := run(t, sc)
	t.Logf("%d nodes, 10%% liars: %v; %d forged records refused", n, &o.figures, o.badSigs)
	if o.figures.ok*100 < o.figures.n*99 {
		t.Fatalf("only %d of %d lookups found a provider among liars, want >= 99%%", o.figures.ok, o.figures.n)
	}
	if o.badSigs == 0 {
		t.Fatalf("no forged record was counted, but liars sent them")
	}
}
