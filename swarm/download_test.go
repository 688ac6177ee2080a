package swarm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/adversary"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/swarm"
)

func TestOneSeederFiveLeechers(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	seeder := newPeer(t, swarm.ServerConfig{})
	c := publish(t, seeder, 3<<20+12345, 1)
	leechers := make([]*tpeer, 5)
	for i := range leechers {
		leechers[i] = newPeer(t, swarm.ServerConfig{})
	}
	dones := make([]<-chan error, len(leechers))
	dls := make([]*swarm.Download, len(leechers))
	for i, l := range leechers {
		from := []*tpeer{seeder}
		for j, o := range leechers {
			if j != i {
				from = append(from, o)
			}
		}
		dls[i], dones[i] = startDownload(ctx, t, l, c, swarm.Config{Seed: uint64(i + 1)}, from...)
	}
	for i, l := range leechers {
		waitRun(t, fmt.Sprintf("leecher %d", i), dones[i], 40*time.Second)
		checkOutput(t, l, c)
		if p := dls[i].Progress(); !p.Done || p.Verified != int64(len(c.data)) {
			t.Errorf("leecher %d progress %+v, want done with %d bytes verified", i, p, len(c.data))
		}
		if n := dls[i].Chunker().Have().Count(); n != c.man.NumChunks() {
			t.Errorf("leecher %d holds %d chunks after Run, want all %d (parity re-encoded)", i, n, c.man.NumChunks())
		}
	}
	up, _ := seeder.srv.Stats()
	var fromLeechers int64
	for _, l := range leechers {
		u, _ := l.srv.Stats()
		fromLeechers += u
	}
	t.Logf("seeder uploaded %d bytes, leechers uploaded %d bytes (content %d)", up, fromLeechers, len(c.data))
	if fromLeechers == 0 {
		t.Errorf("leechers uploaded nothing to each other")
	}
	if up > int64(len(c.data))*5 {
		t.Errorf("seeder uploaded %d bytes, more than 5 copies (%d)", up, 5*len(c.data))
	}
}

func TestFiveSeedersEachHoldAPart(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	publisher := newPeer(t, swarm.ServerConfig{})
	c := publish(t, publisher, 2<<20+777, 2)
	publisher.srv.Unseed(c.id) // the publisher is not in the swarm
	seeders := make([]*tpeer, 5)
	for j := range seeders {
		seeders[j] = newPeer(t, swarm.ServerConfig{})
		seedPart(t, seeders[j], publisher, c, func(i int) bool {
			s, pos := c.man.StripeOf(i)
			return (s+pos)%5 == j
		})
	}
	leecher := newPeer(t, swarm.ServerConfig{})
	d, done := startDownload(ctx, t, leecher, c, swarm.Config{}, seeders...)
	waitRun(t, "leecher", done, 40*time.Second)
	checkOutput(t, leecher, c)
	for j, s := range seeders {
		if up, _ := s.srv.Stats(); up == 0 {
			t.Errorf("seeder %d uploaded nothing; every seeder holds a needed part", j)
		}
	}
	t.Logf("progress: %+v", d.Progress())
}

func TestCorruptPeerIsBanned(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	honest := newPeer(t, swarm.ServerConfig{UploadRate: 4 << 20})
	c := publish(t, honest, 1<<20+5, 3)
	liar := newPeer(t, swarm.ServerConfig{})
	it := honest.item(t, c)
	liar.srv.Seed(c.id, adversary.CorruptSource{Source: swarm.ItemSource(it)})
	leecher := newPeer(t, swarm.ServerConfig{})
	d, done := startDownload(ctx, t, leecher, c, swarm.Config{}, liar, honest)
	waitRun(t, "leecher", done, 40*time.Second)
	checkOutput(t, leecher, c)
	p := d.Progress()
	if p.Banned != 1 || p.BadChunks == 0 {
		t.Errorf("progress %+v: want 1 peer banned and some bad chunks", p)
	}
	_, liarChunks := liar.srv.Stats()
	_, honestChunks := honest.srv.Stats()
	t.Logf("liar sent %d chunks, honest peer %d; %d bad chunks seen", liarChunks, honestChunks, p.BadChunks)
	if liarChunks > 40 {
		t.Errorf("liar sent %d chunks; it should have been banned after a few", liarChunks)
	}
}

func TestSeederVanishes(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	full := newPeer(t, swarm.ServerConfig{UploadRate: 2 << 20})
	c := publish(t, full, 3<<20, 4)
	// Together the partial peers hold d_s chunks of every stripe, but
	// neither holds all data chunks: data positions 0 and 1 and one parity
	// chunk, or data positions 2 and 3 and the other parity chunk.
	parts := []*tpeer{newPeer(t, swarm.ServerConfig{UploadRate: 1 << 20}), newPeer(t, swarm.ServerConfig{UploadRate: 1 << 20})}
	for j, p := range parts {
		seedPart(t, p, full, c, func(i int) bool {
			s, pos := c.man.StripeOf(i)
			if pos >= c.man.StripeDataCount(s) {
				return (pos-c.man.StripeDataCount(s))%2 == j
			}
			return pos/2 == j
		})
	}
	leecher := newPeer(t, swarm.ServerConfig{})
	d, done := startDownload(ctx, t, leecher, c, swarm.Config{}, full, parts[0], parts[1])
	waitRunning(t, done, "a quarter verified before the seeder vanished", func() error {
		if v, want := d.Progress().Verified, int64(len(c.data))/4; v < want {
			return fmt.Errorf("%d bytes verified, want %d", v, want)
		}
		return nil
	})
	full.close()
	at := d.Progress()
	t.Logf("seeder gone at %d of %d bytes", at.Verified, len(c.data))
	waitRun(t, "leecher", done, 40*time.Second)
	checkOutput(t, leecher, c)
	for j, p := range parts {
		if up, _ := p.srv.Stats(); up == 0 {
			t.Errorf("partial peer %d uploaded nothing", j)
		}
	}
}

func TestResumeAfterKill(t *testing.T) {
	testResume(t, false)
}

// TestResumeWithDamagedBitmap (issue 12 item 12): the bitmap is damaged
// between the kill and the resume; the resumed download rebuilds it from
// the output and fetches only what is missing.
func TestResumeWithDamagedBitmap(t *testing.T) {
	testResume(t, true)
}

func testResume(t *testing.T, damage bool) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	seeder := newPeer(t, swarm.ServerConfig{UploadRate: 4 << 20})
	c := publish(t, seeder, 2<<20+99, 5)
	leecher := newPeer(t, swarm.ServerConfig{})
	rctx, kill := context.WithCancel(ctx)
	d, done := startDownload(rctx, t, leecher, c, swarm.Config{}, seeder)
	waitRunning(t, done, "half verified before the kill", func() error {
		if v, want := d.Progress().Verified, int64(len(c.data))/2; v < want {
			return fmt.Errorf("%d bytes verified, want %d", v, want)
		}
		return nil
	})
	kill()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("killed Run = %v, want context.Canceled", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The seeder may still be writing chunks the killed run asked for:
	// count from when it has let go of every request and session of it.
	testwait.Eventually(t, 20*time.Second, "the seeder done with the killed run", func() error {
		if c := seeder.srv.Counters(); c.Queued != 0 || c.Sessions != 0 {
			return fmt.Errorf("%d requests queued, %d sessions open", c.Queued, c.Sessions)
		}
		return nil
	})
	_, sentBefore := seeder.srv.Stats()
	if damage {
		have := filepath.Join(leecher.store.Dir(), "items", c.id.String(), "have")
		raw, err := os.ReadFile(have)
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)-40] ^= 0x01
		if err := os.WriteFile(have, raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	dl, err := leecher.store.OpenDownload(c.id, chunker.DownloadOptions{})
	if err != nil {
		t.Fatalf("OpenDownload: %v", err)
	}
	held := dl.Have().Count()
	if dl.Rebuilt() != damage {
		t.Errorf("Rebuilt() = %v, want %v", dl.Rebuilt(), damage)
	}
	dl.Close()
	if held < c.man.NumDataChunks()/3 {
		t.Fatalf("only %d chunks held after the kill, want at least a third of %d", held, c.man.NumDataChunks())
	}

	d2, done2 := startDownload(ctx, t, leecher, c, swarm.Config{}, seeder)
	waitRun(t, "resumed leecher", done2, 40*time.Second)
	checkOutput(t, leecher, c)
	_, sentAfter := seeder.srv.Stats()
	fetched := d2.Progress().Fetched
	// The download needs d_s chunks per stripe; it holds `held` already.
	need := c.man.NumDataChunks() - held
	t.Logf("held %d chunks after the kill; resumed run fetched %d, the seeder sent %d", held, fetched, sentAfter-sentBefore)
	if fetched > need+need/8+4 {
		t.Errorf("resumed run fetched %d chunks, but only about %d were missing", fetched, need)
	}
	if sent := int(sentAfter - sentBefore); sent > need+need/4+8 {
		t.Errorf("seeder sent %d chunks to the resumed run, but only about %d were missing", sent, need)
	}
}

func TestNoPeersWaitsForAddPeer(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	first := newPeer(t, swarm.ServerConfig{UploadRate: 2 << 20})
	c := publish(t, first, 1<<20+3, 6)
	leecher := newPeer(t, swarm.ServerConfig{})
	d, done := startDownload(ctx, t, leecher, c, swarm.Config{})
	// A claim about absence (no peers: Run keeps waiting) needs a window;
	// 200 ms is many driver iterations.
	select {
	case err := <-done:
		t.Fatalf("download with no peers ended: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	d.AddPeer(first.id(), first.addr())
	waitRunning(t, done, "a quarter verified before the only peer left", func() error {
		if v, want := d.Progress().Verified, int64(len(c.data))/4; v < want {
			return fmt.Errorf("%d bytes verified, want %d", v, want)
		}
		return nil
	})
	t0 := time.Now()
	first.close()
	t.Logf("first peer closed in %v", time.Since(t0))
	waitRunning(t, done, "the session to the closed peer ended", func() error {
		if n := d.Progress().Peers; n != 0 {
			return fmt.Errorf("%d peers", n)
		}
		return nil
	})
	if p := d.Progress(); p.Peers != 0 || p.Done {
		t.Fatalf("progress %+v after the only peer left, want no peers and not done", p)
	}
	second := newPeer(t, swarm.ServerConfig{})
	if c2 := publish(t, second, len(c.data), 6); c2.id != c.id {
		t.Fatalf("second publish gave %s, want %s", c2.id, c.id)
	}
	d.AddPeer(second.id(), second.addr())
	t0 = time.Now()
	waitRun(t, "leecher", done, 40*time.Second)
	t.Logf("finished %v after the second peer was added", time.Since(t0))
	checkOutput(t, leecher, c)
}

// TestDownloadLifecycle: NewDownload validates and starts nothing; Close
// stops a running Run (which returns ErrClosed) and is idempotent; Run runs
// once.
func TestDownloadLifecycle(t *testing.T) {
	leakcheck.Check(t)
	p := newPeer(t, swarm.ServerConfig{})
	if _, err := swarm.NewDownload(swarm.Config{}, nil, p.store, chunker.ContentID{1}, t.TempDir()); err == nil {
		t.Errorf("NewDownload without a dialer: no error")
	}
	d, err := swarm.NewDownload(swarm.Config{}, p.dialer(), p.store, chunker.ContentID{1}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wrong := adversary.NewSwarmPeer(t, adversary.NotFound)
	d.AddPeer(wrong.ID(), wrong.Addr())
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	testwait.Eventually(t, 10*time.Second, "Run asks for metadata", func() error {
		if d.Progress().MetaFetches == 0 {
			return errors.New("no metadata fetch yet")
		}
		return nil
	})
	if err := d.Run(context.Background()); err == nil {
		t.Errorf("a second Run: no error")
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; !errors.Is(err, swarm.ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
