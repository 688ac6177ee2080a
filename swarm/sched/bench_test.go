package sched

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/cputime"
)

// benchDriver answers requests in the order they were issued, as fast as
// the scheduler asks: the cheapest possible network, so the benchmark
// measures the core.
type benchDriver struct {
	tb        testing.TB
	lay       Layout
	s         *Scheduler
	peers     []PeerID
	fifo      []Action // outstanding requests, oldest first (ring)
	head      int
	cancelled [][]bool // [peer][chunk]: request cancelled before its turn
	acts      []Action
	now       time.Time
	seed      uint64
	events    int
}

func newBenchDriver(tb testing.TB, lay Layout, npeers int) *benchDriver {
	d := &benchDriver{tb: tb, lay: lay}
	for i := range npeers {
		d.peers = append(d.peers, PeerID{byte(i)})
		d.cancelled = append(d.cancelled, make([]bool, lay.Chunks()))
	}
	d.reset()
	return d
}

// reset starts a new download with every peer holding everything.
func (d *benchDriver) reset() {
	d.seed++
	s, err := New(d.lay, nil, Config{}, rand.New(rand.NewPCG(d.seed, 0)))
	if err != nil {
		d.tb.Fatal(err)
	}
	d.s, d.fifo, d.head, d.now = s, d.fifo[:0], 0, epoch
	for _, c := range d.cancelled {
		clear(c)
	}
	full := fullBitmap(d.lay.Chunks())
	for _, p := range d.peers {
		s.PeerJoined(d.now, p, full)
	}
	d.collect()
}

func (d *benchDriver) collect() {
	d.acts, _ = d.s.Ready(d.acts[:0])
	for _, a := range d.acts {
		switch a.Kind {
		case Request:
			d.fifo = append(d.fifo, a)
		case Cancel:
			d.cancelled[a.Peer[0]][a.Chunk] = true
		}
	}
}

// step delivers the oldest outstanding request: one ChunkOK event and one
// Ready. It reports false when the download is done.
func (d *benchDriver) step() bool {
	for d.head < len(d.fifo) {
		a := d.fifo[d.head]
		d.head++
		if d.head > 4096 && d.head*2 > len(d.fifo) { // compact the ring
			n := copy(d.fifo, d.fifo[d.head:])
			d.fifo, d.head = d.fifo[:n], 0
		}
		if d.cancelled[a.Peer[0]][a.Chunk] {
			d.cancelled[a.Peer[0]][a.Chunk] = false
			continue
		}
		d.now = d.now.Add(100 * time.Microsecond)
		d.s.ChunkOK(d.now, a.Peer, a.Chunk, d.lay.ChunkBytes(a.Chunk), 0)
		d.events++
		d.collect()
		return !d.s.Done()
	}
	return false
}

var gib = Layout{Size: 1 << 30, ChunkSize: 256 << 10, K: 16, M: 4} // 4096 data + 1024 parity chunks

// BenchmarkEvent measures one ChunkOK and the Ready that follows it, in a
// 1 GiB download (4096 data chunks, 16+4 stripes) from 8 peers holding
// everything. ns/op is the cost per event; MB/s is content scheduled per
// second of CPU. "steady" restarts the download when the endgame begins,
// "endgame" measures only events after it began, "all" both as they come.
func BenchmarkEvent(b *testing.B) {
	for _, phase := range []string{"steady", "endgame", "all"} {
		b.Run(phase, func(b *testing.B) {
			d := newBenchDriver(b, gib, 8)
			skip := func() {
				if phase == "endgame" {
					for d.s.needTotal > 0 && d.step() {
					}
				}
			}
			skip()
			b.SetBytes(int64(gib.ChunkSize))
			b.ReportAllocs()
			b.ResetTimer()
			var cpu time.Duration
			t0 := cputime.Process()
			for range b.N {
				if !d.step() || phase == "steady" && d.s.needTotal == 0 {
					cpu += cputime.Process() - t0
					b.StopTimer()
					d.reset()
					skip()
					b.StartTimer()
					t0 = cputime.Process()
				}
			}
			cpu += cputime.Process() - t0
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkDownload runs a whole 1 GiB download from 8 peers per op,
// joins included, and reports the cost per event.
func BenchmarkDownload(b *testing.B) {
	d := newBenchDriver(b, gib, 8)
	b.SetBytes(gib.Size)
	b.ReportAllocs()
	b.ResetTimer()
	d.events = 0
	t0 := cputime.Process()
	for i := range b.N {
		if i > 0 {
			d.reset()
		}
		for d.step() {
		}
	}
	cpu := cputime.Process() - t0
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(d.events), "ns/event")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(d.events), "cpu-ns/event")
	b.ReportMetric(float64(d.events)/float64(b.N), "events/op")
}

// BenchmarkHave measures a Have event that moves a stripe in the rarity
// order, with 8 partial peers on the 1 GiB layout.
func BenchmarkHave(b *testing.B) {
	s, err := New(gib, nil, Config{}, rand.New(rand.NewPCG(1, 0)))
	if err != nil {
		b.Fatal(err)
	}
	n := gib.Chunks()
	for i := range 8 {
		s.PeerJoined(epoch, PeerID{byte(i)}, nil)
	}
	var acts []Action
	b.ReportAllocs()
	b.ResetTimer()
	t0 := cputime.Process()
	defer func() { b.ReportMetric(float64((cputime.Process()-t0).Nanoseconds())/float64(b.N), "cpu-ns/op") }()
	for i := range b.N {
		c := (i * 7919) % n
		p := PeerID{byte(i % 8)}
		if s.byID[p].have.has(c) { // keep announcing new chunks
			b.StopTimer()
			s.PeerLeft(epoch, p)
			s.PeerJoined(epoch, p, nil)
			acts, _ = s.Ready(acts[:0])
			b.StartTimer()
		}
		s.Have(epoch, p, c)
		acts, _ = s.Ready(acts[:0])
	}
}

// TestSteadyStateAllocs holds the event path to zero allocations once the
// scheduler is warm.
func TestSteadyStateAllocs(t *testing.T) {
	d := newBenchDriver(t, gib, 8)
	for range 500 {
		d.step()
	}
	if a := testing.AllocsPerRun(1000, func() { d.step() }); a != 0 {
		t.Errorf("ChunkOK+Ready allocates %.2f times per event, want 0", a)
	}
	if d.s.Done() {
		t.Fatal("download finished during the measurement; make it longer")
	}
}
