package dht

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// coreWithContacts returns a core whose table holds n silent contacts.
func coreWithContacts(t *testing.T, cfg Config, n int) (*testPeer, []Contact) {
	t.Helper()
	a := newTestPeer(t, 1, cfg)
	rng := rand.New(rand.NewPCG(21, 22))
	var cs []Contact
	for i := range n {
		c := Contact{ID: identity.PeerID(randKey(rng)), Addr: testAddr(100 + i)}
		a.core.table.seen(c, t0)
		cs = append(cs, c)
	}
	return a, cs
}

func TestLookupAlphaAndTimeouts(t *testing.T) {
	a, _ := coreWithContacts(t, Config{}, 30)
	id := a.core.FindNode(t0, Key{1})
	out := a.drain()
	if len(out) != 3 {
		t.Fatalf("lookup start sent %d queries, want alpha=3", len(out))
	}
	// Nobody answers: every 2 s three more time out and three more go out,
	// until the 20 closest have failed (7 rounds), then the lookup ends.
	now := t0
	var done *Event
	for round := 0; round < 20 && done == nil; round++ {
		now = now.Add(2 * time.Second)
		if d := deadlineOf(t, a.core); d.After(now) {
			t.Fatalf("round %d: next deadline %v after the timeouts at %v", round, d, now)
		}
		a.core.Tick(now)
		rd := readyOf(a.core)
		if len(rd.Messages) > 3 {
			t.Fatalf("round %d: %d queries in flight, want at most 3", round, len(rd.Messages))
		}
		for i := range rd.Events {
			if rd.Events[i].Kind == EventDone && rd.Events[i].Lookup == id {
				done = &rd.Events[i]
			}
		}
	}
	if done == nil {
		t.Fatalf("lookup with only silent contacts never ended")
	}
	if done.Stats.Timeouts != done.Stats.Requests || len(done.Closest) != 0 {
		t.Fatalf("done stats %+v closest %d; want every request timed out and nobody closest", done.Stats, len(done.Closest))
	}
	// One failure each: the contacts stay (MaxFailures is 2).
	if a.core.TableSize() != 30 {
		t.Fatalf("table has %d entries after one failure each, want 30", a.core.TableSize())
	}
}

func TestLivenessPingReplacesDeadNode(t *testing.T) {
	a := newTestPeer(t, 1, Config{K: 2, Alpha: 1})
	// Fill bucket 0 (IDs differing from ours in the first bit) with 2 peers.
	var peers []*testPeer
	for seed := uint64(2); len(peers) < 3; seed++ {
		p := newTestPeer(t, seed, Config{})
		if commonPrefixLen(a.core.self, p.kp.Public().PeerID()) == 0 {
			peers = append(peers, p)
		}
	}
	a.deliver(t0, peers[0], Message{Type: MsgPing, TxID: 1})
	a.deliver(t0, peers[1], Message{Type: MsgPing, TxID: 1})
	// Later, a third appears: the stale head (peers[0]) is pinged.
	later := t0.Add(2 * time.Minute)
	out := a.deliver(later, peers[2], Message{Type: MsgPing, TxID: 1})
	var ping *Message
	for i := range out {
		if out[i].Type == MsgPing {
			ping = &out[i]
		}
	}
	if ping == nil {
		t.Fatalf("no liveness ping after a newcomer met a full bucket; sent %+v", out)
	}
	// Two unanswered pings remove peers[0] and promote peers[2].
	now := later
	for i := range 2 {
		now = now.Add(3 * time.Second)
		a.core.Tick(now)
		a.drain()
		if i == 0 {
			a.deliver(now, peers[2], Message{Type: MsgPing, TxID: 2}) // triggers the second ping
		}
	}
	id0, id2 := peers[0].kp.Public().PeerID(), peers[2].kp.Public().PeerID()
	if a.core.table.contains(id0) || !a.core.table.contains(id2) {
		t.Fatalf("after two failed pings: dead node present=%v, newcomer present=%v; want false, true",
			a.core.table.contains(id0), a.core.table.contains(id2))
	}
}

func TestStaleBucketsRefreshed(t *testing.T) {
	a, _ := coreWithContacts(t, Config{}, 50)
	a.core.Tick(t0.Add(30 * time.Minute))
	if n := len(a.drain()); n != 0 {
		t.Fatalf("%d messages after 30 min, want no refresh yet", n)
	}
	now := t0.Add(61 * time.Minute)
	a.core.Tick(now)
	out := a.drain()
	finds := 0
	for _, m := range out {
		if m.Type == MsgFindNode {
			finds++
		}
	}
	if finds == 0 {
		t.Fatalf("no find node sent after an hour without lookups")
	}
	// Every bucket up to the deepest non-empty one was refreshed.
	if stale := a.core.table.staleBuckets(nil, now.Add(-time.Second)); len(stale) != 0 {
		t.Fatalf("buckets %v still stale after the refresh", stale)
	}
}

// TestLookupSlowQueriesDoNotBlock: queries to silent nodes (departed
// Sybils, churn) stop counting against Alpha after SlowAfter, so the lookup
// asks the next candidates then, not only when the first time out.
func TestLookupSlowQueriesDoNotBlock(t *testing.T) {
	a, _ := coreWithContacts(t, Config{}, 30)
	id := a.core.FindProviders(t0, Key{2})
	if out := a.drain(); len(out) != 3 {
		t.Fatalf("lookup start sent %d queries, want alpha=3", len(out))
	}
	slow := t0.Add(500 * time.Millisecond) // RequestTimeout/4
	if d := deadlineOf(t, a.core); d.After(slow) {
		t.Fatalf("next deadline %v, want by %v (SlowAfter)", d.Sub(t0), slow.Sub(t0))
	}
	a.core.Tick(slow)
	if out := a.drain(); len(out) != 3 {
		t.Fatalf("%d queries sent once the first three were slow, want 3 more", len(out))
	}
	// The slow ones still time out at RequestTimeout without sending more
	// than alpha beside the ones not yet slow.
	now := slow
	var done *Event
	for range 40 {
		now = now.Add(500 * time.Millisecond)
		a.core.Tick(now)
		rd := readyOf(a.core)
		if len(rd.Messages) > 3 {
			t.Fatalf("%d queries at once, want at most alpha", len(rd.Messages))
		}
		for i := range rd.Events {
			if rd.Events[i].Kind == EventDone && rd.Events[i].Lookup == id {
				done = &rd.Events[i]
			}
		}
		if done != nil {
			break
		}
	}
	if done == nil {
		t.Fatal("lookup never ended")
	}
	if done.Stats.Slow == 0 || done.Stats.Timeouts != done.Stats.Requests {
		t.Fatalf("stats %+v: want slow queries counted and every request timed out", done.Stats)
	}
}
