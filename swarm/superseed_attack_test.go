package swarm_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/adversary"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/swarm"
)

// Attacks on super-seeding (on by default), through real QUIC sockets:
// identities that try to become the first recipients of chunks so that
// the seeder refuses those chunks to honest peers. The seeders here hold a
// refused chunk back for an hour (SuperSeedHold), so a refusal an attacker
// caused and nothing else undid would leave the honest download waiting
// past the test's deadline.

// holdSession opens a session with seeder for c as a, sends a hello that
// holds nothing and then a have for each chunk in haves, and keeps the
// stream open without reading until ctx ends.
func holdSession(ctx context.Context, t *testing.T, a *adversary.SwarmPeer, seeder *tpeer, c content, haves []uint32) {
	t.Helper()
	st, err := a.Node.OpenStream(ctx, seeder.id(), seeder.addr(), swarm.Tag)
	if err != nil {
		t.Fatalf("attacker session: %v", err)
	}
	n := c.man.NumChunks()
	b := swarm.AppendRequest(nil, swarm.Request{Kind: swarm.KindSession, ID: [32]byte(c.id)})
	b = swarm.AppendMessage(b, swarm.Message{Type: swarm.MsgHello, N: n, Bitmap: make([]byte, (n+7)/8)})
	if len(haves) > 0 {
		b = swarm.AppendMessage(b, swarm.Message{Type: swarm.MsgHave, Indexes: haves})
	}
	if _, err := st.Write(b); err != nil {
		t.Fatalf("attacker session: %v", err)
	}
	context.AfterFunc(ctx, func() {
		st.CancelRead(quic.StreamErrorCode(swarm.CodeCancelled))
		st.CancelWrite(quic.StreamErrorCode(swarm.CodeCancelled))
	})
}

// TestAttackSuperSeedHoard: four identities open sessions with the seeder
// (so they could announce what they get), ask for the first 32 chunks and
// never read them. Before the fix their requests made them the chunks'
// first recipients and an honest peer was refused those chunks until the
// hold ran out (a 64 MiB download went from 0.25 s to 15 s). Now a peer
// counts as a first recipient that others may be sent away for only once
// another peer has announced a chunk it got: the honest peer is refused
// nothing.
//
// In the second case two of the identities also announce the first 32
// chunks, vouching for the others (a colluding attacker can make the seeder
// believe anything it does not see itself): the seeder does refuse the
// honest peer, and the honest peer, finding no other peer with those
// chunks, asks the seeder again after sched's ElsewhereWait and is served.
// Either way it completes although the seeder holds refused chunks back
// for an hour.
func TestAttackSuperSeedHoard(t *testing.T) {
	for _, vouch := range []bool{false, true} {
		t.Run(map[bool]string{false: "hoarders", true: "hoarders vouching for each other"}[vouch], func(t *testing.T) {
			attackSuperSeed(t, vouch)
		})
	}
}

func attackSuperSeed(t *testing.T, vouch bool) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	seeder := newPeer(t, swarm.ServerConfig{StallTimeout: 3 * time.Second, StallPenalty: 5 * time.Second, SuperSeedHold: time.Hour})
	// 256 KiB chunks fit a stream's flow-control window: the seeder's
	// writes complete although the attackers never read.
	opts := chunker.PublishOptions{ChunkSize: 256 << 10, DataShards: 8, ParityShards: 2}
	c := publishWith(t, seeder, 12<<20+5, 33, opts)
	actx, stopAttack := context.WithCancel(ctx)
	defer stopAttack()
	chunks := make([]int, 32)
	haves := make([]uint32, 32)
	for i := range chunks {
		chunks[i], haves[i] = i, uint32(i)
	}
	sessions := 0
	for k := range 4 {
		a := adversary.NewSwarmPeer(t, adversary.NotFound)
		holdSession(actx, t, a, seeder, c, nil)
		sessions++
		testwait.Eventually(t, 10*time.Second, "the attacker's session is open", func() error {
			if n := seeder.srv.Counters().Sessions; n != sessions {
				return fmt.Errorf("%d sessions open", n)
			}
			return nil
		})
		if n, err := a.HoardUploads(actx, seeder.id(), seeder.addr(), c.id, chunks); err != nil {
			t.Fatalf("attack opened %d streams: %v", n, err)
		}
		if vouch && k%2 == 1 {
			holdSession(actx, t, a, seeder, c, haves)
			sessions++
		}
	}
	testwait.Eventually(t, 10*time.Second, "every attack request accepted or refused", func() error {
		// A request for a chunk another attacker claimed may be sent
		// elsewhere on arrival, never accepted.
		if cn, early := seeder.srv.Counters(), seeder.srv.SuperSeedCounters().Early; cn.Accepted+cn.BusyPeer+cn.BusyTotal+early < 4*32 {
			return fmt.Errorf("counters %+v, refused on arrival %d", cn, early)
		}
		return nil
	})
	leecher := newPeer(t, swarm.ServerConfig{})
	_, done := startDownload(ctx, t, leecher, c, swarm.Config{}, seeder)
	defer func() { t.Logf("super-seeding %+v; server %+v", seeder.srv.SuperSeedCounters(), seeder.srv.Counters()) }()
	waitRun(t, "honest leecher", done, 30*time.Second)
	checkOutput(t, leecher, c)
	honest := seeder.srv.SuperSeedRefusalsOf(c.id, leecher.id())
	t.Logf("the honest peer was refused %d chunk requests", honest)
	if !vouch && honest != 0 {
		t.Errorf("the seeder refused %d chunk requests of the honest peer: the attackers' claims sent it away", honest)
	}
	if vouch && honest == 0 {
		t.Error("the seeder refused the honest peer nothing: the vouching attack was not tried")
	}
}
