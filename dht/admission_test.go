package dht

import (
	"net/netip"
	"testing"
	"time"
)

// TestReplayDoesNotMoveEntry (issue 12 item 7): a captured ping of b,
// replayed from another address, is dropped as a replay; another signed
// request of b's (captured elsewhere) from a new address makes a ping that
// address first, and since the attacker cannot answer as b, b's entry keeps
// its address and is not penalised.
func TestReplayDoesNotMoveEntry(t *testing.T) {
	a, b := newTestPeer(t, 1, Config{}), newTestPeer(t, 2, Config{})
	a.deliver(t0, b, Message{Type: MsgPing})
	if addr, ok := a.core.table.addrOf(b.kp.Public().PeerID()); !ok || addr != b.addr {
		t.Fatalf("b not admitted at its address after a round trip: %v %v", addr, ok)
	}
	evil := netip.MustParseAddrPort("127.6.6.6:666")
	captured := Message{Type: MsgPing, TxID: b.txid}.Append(nil) // the ping b sent
	a.core.HandleMessage(t0, evil, b.kp.Public(), captured)
	if got := a.core.Counters().Replays; got != 1 {
		t.Fatalf("Replays = %d after a replayed ping, want 1", got)
	}
	other := Message{Type: MsgFindNode, TxID: 77, Target: Key{9}}.Append(nil) // b's request to someone else
	now := t0.Add(time.Second)
	a.core.HandleMessage(now, evil, b.kp.Public(), other)
	verifies := 0
	for _, o := range a.drainTo() {
		if o.m.Type == MsgPing && o.to == evil {
			verifies++
		}
	}
	if verifies != 1 {
		t.Fatalf("%d pings to the new address, want 1 to verify it", verifies)
	}
	for range 3 { // the verification times out, more than once over
		now = now.Add(3 * time.Second)
		a.core.Tick(now)
		a.drain()
		a.core.HandleMessage(now, evil, b.kp.Public(), Message{Type: MsgFindNode, TxID: uint32(now.Unix()), Target: Key{9}}.Append(nil))
		a.drain()
	}
	if addr, ok := a.core.table.addrOf(b.kp.Public().PeerID()); !ok || addr != b.addr {
		t.Fatalf("b's entry moved or dropped by replays: %v %v, want %v", addr, ok, b.addr)
	}
}

// TestSilentRequestersNotAdmitted (issue 12 item 7): 100 identities that
// send signed requests but never answer do not enter the table, so they
// cannot slow lookups; honest answering requesters do.
func TestSilentRequestersNotAdmitted(t *testing.T) {
	a := newTestPeer(t, 1, Config{})
	for i := range 100 {
		f := newTestPeer(t, uint64(1000+i), Config{})
		f.silent = true
		a.deliver(t0, f, Message{Type: MsgFindNode, Target: Key{byte(i)}})
	}
	a.core.Tick(t0.Add(3 * time.Second))
	a.drain()
	if n := a.core.TableSize(); n != 0 {
		t.Fatalf("%d silent identities admitted to the table, want 0", n)
	}
	if c := a.core.Counters(); c.VerifySkipped != 100-maxVerifying {
		t.Fatalf("VerifySkipped = %d, want %d (verifications are capped at %d)", c.VerifySkipped, 100-maxVerifying, maxVerifying)
	}
	h := newTestPeer(t, 2, Config{})
	a.deliver(t0.Add(4*time.Second), h, Message{Type: MsgPing})
	if n := a.core.TableSize(); n != 1 {
		t.Fatalf("table has %d after an honest requester, want 1", n)
	}
}

// TestBackoffSilentAddress (issue 16 item 5): bootstrapping every 2 s to
// an address that never answers sends it ever fewer pings; once it
// answers, pings flow again at once.
func TestBackoffSilentAddress(t *testing.T) {
	a := newTestPeer(t, 1, Config{})
	boot := netip.MustParseAddrPort("127.9.9.9:9")
	now := t0
	pings := 0
	for range 300 { // 10 minutes, one bootstrap every 2 s as seed does
		a.core.Bootstrap(now, []netip.AddrPort{boot})
		for _, o := range a.drainTo() {
			if o.to == boot {
				pings++
			}
		}
		now = now.Add(2 * time.Second)
		a.core.Tick(now)
		a.drain()
	}
	if pings > 15 {
		t.Fatalf("%d pings to a silent bootstrap address in 10 min, want at most 15 (backed off)", pings)
	}
	if a.core.Counters().BackedOff == 0 {
		t.Fatalf("BackedOff not counted")
	}
	t.Logf("%d pings in 10 min (300 bootstraps)", pings)
	// The address comes to life: a request from it ends the backoff.
	b := newTestPeer(t, 2, Config{})
	b.addr = boot
	a.deliver(now, b, Message{Type: MsgPing})
	a.core.Bootstrap(now, []netip.AddrPort{boot})
	sent := 0
	for _, o := range a.drainTo() {
		if o.to == boot && o.m.Type == MsgPing {
			sent++
		}
	}
	if sent != 1 {
		t.Fatalf("%d pings to the address after it spoke, want 1", sent)
	}
}
