package swarm_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/adversary"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/swarm"
)

// Session slots (issue 12, the sessions one download opens): a link or a
// DHT answer naming a crowd of Sybils made a download run one session loop
// per known peer, up to MaxPeers (1024) of them, each dialling again every
// 5 s for as long as the download lasted. Config.MaxSessions caps them.

// TestAttackSessionSybilsNotFound: 100 Sybils that answer every request
// "not found" are known before the one honest seeder, with MaxSessions 8.
// The download completes, and it never ran more than 8 sessions at once
// (the previous code ran one per known peer, 101).
func TestAttackSessionSybilsNotFound(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const sybils, slots = 100, 8
	seeder := newPeer(t, swarm.ServerConfig{})
	c := publish(t, seeder, 1<<20+3, 31)
	var crowd []*adversary.SwarmPeer
	for range sybils {
		crowd = append(crowd, adversary.NewSwarmPeer(t, adversary.NotFound))
	}
	leecher := newPeer(t, swarm.ServerConfig{})
	d, err := swarm.NewDownload(swarm.Config{Server: leecher.srv, MaxSessions: slots}, leecher.dialer(), leecher.store, c.id, filepath.Join(leecher.dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, s := range crowd {
		d.AddPeer(s.ID(), s.Addr())
	}
	d.AddPeer(seeder.id(), seeder.addr())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitRun(t, "leecher", done, 60*time.Second)
	checkOutput(t, leecher, c)
	p := d.Progress()
	var asked int
	for _, s := range crowd {
		if s.Requests(swarm.KindSession) > 0 {
			asked++
		}
	}
	t.Logf("progress %+v; %d of %d Sybils were asked for a session", p, asked, sybils)
	if p.SessionsPeak > slots {
		t.Errorf("Progress.SessionsPeak = %d, want at most MaxSessions = %d", p.SessionsPeak, slots)
	}
	if p.SessionsPeak < slots {
		t.Errorf("Progress.SessionsPeak = %d, want %d: 101 peers were known, the cap should have been reached", p.SessionsPeak, slots)
	}
	if p.Sessions != 0 || p.SessionsWaiting != 0 {
		t.Errorf("after Run: Sessions = %d, SessionsWaiting = %d, want 0 and 0", p.Sessions, p.SessionsWaiting)
	}
}

// TestAttackSessionSybilsIdle: 30 Sybils that accept a session, announce
// no chunk and then say nothing take every slot of a download (MaxSessions
// 4; the download resumes, so it needs no metadata and runs its sessions at
// once) and would hold them for the whole download. The honest seeder
// arrives later, while they hold the slots. Sessions idle for SessionIdle
// yield their slots to waiting peers, so the seeder gets one and the
// download completes; the download never ran more than 4 sessions at once.
// Second case: with SessionIdle an hour (the download would hang until
// the test's timeout), the Sybils yield because they joined announcing no
// chunk (EmptySessionIdle).
func TestAttackSessionSybilsIdle(t *testing.T) {
	t.Run("SessionIdle", func(t *testing.T) {
		testSessionSybilsIdle(t, swarm.Config{SessionIdle: 200 * time.Millisecond, EmptySessionIdle: time.Hour})
	})
	t.Run("EmptySessionIdle", func(t *testing.T) {
		testSessionSybilsIdle(t, swarm.Config{SessionIdle: time.Hour, EmptySessionIdle: 100 * time.Millisecond})
	})
}

func testSessionSybilsIdle(t *testing.T, cfg swarm.Config) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const sybils, slots = 30, 4
	seeder := newPeer(t, swarm.ServerConfig{})
	c := publish(t, seeder, 1<<20+5, 32)
	var crowd []*adversary.SwarmPeer
	for range sybils {
		crowd = append(crowd, adversary.NewSwarmPeer(t, adversary.IdleSession))
	}
	held := func() (n int64) {
		for _, s := range crowd {
			n += s.IdleSessions()
		}
		return n
	}
	leecher := newPeer(t, swarm.ServerConfig{})
	out := recordDownload(t, leecher, seeder, c)
	cfg.Server, cfg.MaxSessions = leecher.srv, slots
	d, err := swarm.NewDownload(cfg, leecher.dialer(), leecher.store, c.id, out)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, s := range crowd {
		d.AddPeer(s.ID(), s.Addr())
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitRunning(t, done, "the Sybils hold every slot, the others wait", func() error {
		p := d.Progress()
		if n := held(); n < slots || p.SessionsWaiting == 0 {
			return fmt.Errorf("the Sybils hold %d sessions, %d peers wait", n, p.SessionsWaiting)
		}
		return nil
	})
	d.AddPeer(seeder.id(), seeder.addr())
	waitRun(t, "leecher", done, 60*time.Second)
	checkOutput(t, leecher, c)
	p := d.Progress()
	t.Logf("progress %+v", p)
	if p.SessionsPeak > slots {
		t.Errorf("Progress.SessionsPeak = %d, want at most MaxSessions = %d", p.SessionsPeak, slots)
	}
	if p.SessionsYielded < 1 {
		t.Errorf("Progress.SessionsYielded = %d, want at least 1 (idle Sybils held every slot)", p.SessionsYielded)
	}
	testwait.Eventually(t, 10*time.Second, "the Sybils' sessions closed", func() error {
		if n := held(); n != 0 {
			return fmt.Errorf("%d still open", n)
		}
		return nil
	})
}

// TestSessionQueueFreshPeerFirst: a free slot goes to the waiting peer with
// the fewest fruitless sessions. 6 Sybils that join and never serve pass a
// single slot around (MaxSessions 1, SessionIdle 1 s) until each has had a
// turn; the honest seeder, added then, is the next to get the slot although
// Sybils whose pause is over waited longer (in arrival order they would all
// go first), and it keeps the slot until the download completes.
func TestSessionQueueFreshPeerFirst(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const sybils = 6
	seeder := newPeer(t, swarm.ServerConfig{})
	c := publish(t, seeder, 1<<20+9, 33)
	var crowd []*adversary.SwarmPeer
	for range sybils {
		crowd = append(crowd, adversary.NewSwarmPeer(t, adversary.IdleSession))
	}
	sessions := func() (n int64) {
		for _, s := range crowd {
			n += s.Requests(swarm.KindSession)
		}
		return n
	}
	leecher := newPeer(t, swarm.ServerConfig{})
	out := recordDownload(t, leecher, seeder, c)
	// SessionIdle leaves the seeder ample time for its first chunk on a
	// slow machine: the claim is about who gets the slot, not how fast.
	d, err := swarm.NewDownload(swarm.Config{Server: leecher.srv, MaxSessions: 1, SessionIdle: time.Second},
		leecher.dialer(), leecher.store, c.id, out)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, s := range crowd {
		d.AddPeer(s.ID(), s.Addr())
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitRunning(t, done, "every Sybil had a session", func() error {
		for i, s := range crowd {
			if s.Requests(swarm.KindSession) == 0 {
				return fmt.Errorf("Sybil %d not asked yet", i)
			}
		}
		return nil
	})
	before := sessions()
	d.AddPeer(seeder.id(), seeder.addr())
	waitRun(t, "leecher", done, 60*time.Second)
	checkOutput(t, leecher, c)
	after := sessions()
	t.Logf("Sybil sessions: %d before the seeder was added, %d after; progress %+v", before, after, d.Progress())
	// The last Sybil's session was running when the seeder was added; its
	// slot goes to the seeder (no strike; every Sybil has one). One more
	// is allowed for a session that ends before the seeder is picked up.
	if after-before > 1 {
		t.Errorf("%d Sybil sessions started after the seeder was added, want at most 1", after-before)
	}
	if p := d.Progress(); p.SessionsPeak != 1 {
		t.Errorf("Progress.SessionsPeak = %d, want 1", p.SessionsPeak)
	}
}

// recordDownload records in leecher's store a download of c with no chunk
// yet, as a seeder's manifest and leaf layer make it (so Run resumes it and
// needs no metadata), and returns its output folder.
func recordDownload(t *testing.T, leecher, seeder *tpeer, c content) string {
	t.Helper()
	out := filepath.Join(leecher.dir, "out")
	rec, err := leecher.store.CreateDownload(c.man, seeder.item(t, c).Leaves(), out, chunker.DownloadOptions{})
	if err != nil {
		t.Fatalf("CreateDownload: %v", err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}
