package swarm_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/swarm"
	"github.com/shoal-p2p/shoal/swarm/sched"
)

// lateHaves is a dialer whose session streams to the peers in late deliver
// what they read haveDelay late: on a fleet, a peer's haves reach the other
// peers behind the chunks it is uploading to them on the same connection,
// while they reach the seeder (which uploads to it, not the other way) at
// once.
type lateHaves struct {
	d    swarm.Dialer
	late map[identity.PeerID]bool
}

const haveDelay = 400 * time.Millisecond

func (l lateHaves) OpenStream(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (swarm.Stream, error) {
	st, err := l.d.OpenStream(ctx, peer, addr)
	if err != nil || !l.late[peer] {
		return st, err
	}
	return &lateStream{Stream: st}, nil
}

// lateStream delivers what a session stream (its first write is a session
// request) reads haveDelay after it arrived; chunk streams pass as they
// are.
type lateStream struct {
	swarm.Stream
	once    sync.Once
	session bool
	in      chan lateRead
	buf     []byte
	err     error
}

type lateRead struct {
	b   []byte
	at  time.Time
	err error
}

func (s *lateStream) Write(p []byte) (int, error) {
	s.once.Do(func() {
		if s.session = len(p) > 1 && swarm.Kind(p[1]) == swarm.KindSession; s.session {
			s.in = make(chan lateRead, 1024)
			go func() {
				for {
					b := make([]byte, 4096)
					n, err := s.Stream.Read(b)
					s.in <- lateRead{b: b[:n], at: time.Now(), err: err}
					if err != nil {
						close(s.in)
						return
					}
				}
			}()
		}
	})
	return s.Stream.Write(p)
}

func (s *lateStream) Read(p []byte) (int, error) {
	if !s.session {
		return s.Stream.Read(p)
	}
	for len(s.buf) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		r, ok := <-s.in
		if !ok {
			return 0, s.err
		}
		time.Sleep(time.Until(r.at.Add(haveDelay)))
		s.buf, s.err = r.b, r.err
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// On a fleet the seeder's uplink is the bottleneck, and a chunk it sends
// twice costs the whole fleet that chunk's time. Here leechers hear each
// other's haves haveDelay late (as behind a busy uplink) and the seeder's
// upload is capped: the seeder must still send each data chunk about once
// and no parity at all. A leecher refused a chunk asked the seeder again
// after ElsewhereWait (100 ms), before the owner's have reached it, and was
// sent the chunk a second time (Again); now it waits up to
// MaxElsewhereWait while the seeder has other chunks for it (sched's
// expireDeferrals). And a leecher refused a stripe's data chunks no longer
// fetches the stripe's parity from the seeder instead.
//
// The copies depend on the machine's speed as well as on the rules (a
// starved leecher reads its haves later still: 1.14-1.21 copies on a
// 2-core box at load 40, 1.30 under the race detector in CI), so the
// rule is checked against the old one in the same run: re-asking after
// ElsewhereWait whatever the seeder has for us (MaxElsewhereWait no
// longer than ElsewhereWait) measured 1.31-1.33 copies, Again 234-247.
func TestSuperSeedLateHaves(t *testing.T) {
	leakcheck.Check(t)
	now := lateHavesRun(t, sched.Config{})
	old := lateHavesRun(t, sched.Config{MaxElsewhereWait: time.Nanosecond})
	t.Logf("seeder sent %.3f copies (Again %d), %.3f re-asking after ElsewhereWait (Again %d)", now.copies, now.ss.Repeats.Again, old.copies, old.ss.Repeats.Again)
	if now.ss.Distinct > now.data {
		t.Errorf("the seeder sent %d distinct chunks for %d data chunks: %d parity chunks nobody needed", now.ss.Distinct, now.data, now.ss.Distinct-now.data)
	}
	if now.ss.Repeats.Again >= old.ss.Repeats.Again || now.copies >= old.copies {
		t.Errorf("waiting while the seeder has other chunks for us: %.3f copies, Again %d; re-asking after ElsewhereWait: %.3f, Again %d; want fewer of both",
			now.copies, now.ss.Repeats.Again, old.copies, old.ss.Repeats.Again)
	}
	if now.copies > 1.4 {
		t.Errorf("the seeder sent %.3f copies, want at most 1.4", now.copies)
	}
}

type lateHavesResult struct {
	copies float64
	ss     swarm.SuperSeedCounters
	data   int64
}

// lateHavesRun runs TestSuperSeedLateHaves's swarm once with the
// leechers' scheduler configured as sc.
func lateHavesRun(t *testing.T, sc sched.Config) lateHavesResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	seeder := newPeer(t, swarm.ServerConfig{UploadRate: 8 << 20})
	opts := chunker.PublishOptions{ChunkSize: 64 << 10, DataShards: 8, ParityShards: 2}
	c := publishWith(t, seeder, 24<<20+4321, 11, opts)
	leechers := make([]*tpeer, 5)
	late := map[identity.PeerID]bool{}
	for i := range leechers {
		leechers[i] = newPeer(t, swarm.ServerConfig{})
		late[leechers[i].id()] = true
	}
	dones := make([]<-chan error, len(leechers))
	for i, l := range leechers {
		var from []*tpeer
		for j, o := range leechers {
			if j != i {
				from = append(from, o)
			}
		}
		d, err := swarm.NewDownload(swarm.Config{Server: l.srv, Seed: uint64(i + 1), Sched: sc}, lateHaves{d: l.dialer(), late: late}, l.store, c.id, filepath.Join(l.dir, "out"))
		if err != nil {
			t.Fatal(err)
		}
		d.AddPeer(seeder.id(), seeder.addr())
		for _, o := range from {
			d.AddPeer(o.id(), o.addr())
		}
		done := make(chan error, 1)
		go func() { err := d.Run(ctx); d.Close(); done <- err }()
		dones[i] = done
	}
	for i, l := range leechers {
		waitRun(t, fmt.Sprintf("leecher %d", i), dones[i], 90*time.Second)
		checkOutput(t, l, c)
	}
	up, _ := seeder.srv.Stats()
	r := lateHavesResult{copies: float64(up) / float64(len(c.data)), ss: seeder.srv.SuperSeedCounters(), data: int64(c.man.NumDataChunks())}
	t.Logf("seeder sent %.3f copies; super-seeding %+v", r.copies, r.ss)
	for _, l := range leechers {
		l.close()
	}
	seeder.close()
	return r
}
