package dht

import (
	"net/netip"
	"testing"
	"time"
)

// store asks a to keep p's record for key, as p at p.addr would.
func storeAt(t *testing.T, a, p *testPeer, key Key, now time.Time) uint8 {
	t.Helper()
	tok := a.tokenFrom(now, p, key)
	return ackOf(t, a.deliver(now, p, Message{Type: MsgAddProvider, TxID: 2, Token: tok, Records: []Record{signedRecord(p, key, now)}}))
}

// TestSybilProvidersDoNotCrowdOut (issue 12 item 6): six throwaway
// identities from one network store records before the publisher; every
// providers reply still carries the publisher, and one network cannot fill
// a content ID's quota.
func TestSybilProvidersDoNotCrowdOut(t *testing.T) {
	now := t0.Add(time.Hour)
	key := Key{0x51, 0xb1}
	a := newTestPeer(t, 1, Config{})
	for i := range 40 { // 6 fit in a reply; 8 are kept from one network
		s := newTestPeer(t, uint64(100+i), Config{})
		s.addr = netip.AddrPortFrom(netip.MustParseAddr("203.0.113.66"), uint16(2000+i))
		st := storeAt(t, a, s, key, now)
		if i < 8 && st != AckStored {
			t.Fatalf("sybil %d: ack %d, want stored", i, st)
		}
		if i >= 8 && st != AckFull {
			t.Fatalf("sybil %d from the same /24: ack %d, want full (8 per network)", i, st)
		}
	}
	pub := newTestPeer(t, 7, Config{})
	pub.addr = netip.MustParseAddrPort("198.51.100.7:4000")
	if st := storeAt(t, a, pub, key, now); st != AckStored {
		t.Fatalf("publisher: ack %d, want stored", st)
	}
	asker := newTestPeer(t, 999, Config{})
	for try := range 50 {
		rs := asker.deliverTo(a, now, Message{Type: MsgGetProviders, TxID: uint32(10 + try), Target: key})
		found := false
		for _, r := range rs.Records {
			if r.Key == pub.kp.Public() {
				found = true
			}
		}
		if !found {
			t.Fatalf("reply %d carries %d records, none the publisher's", try, len(rs.Records))
		}
	}
}

// deliverTo sends m from p to a and returns a's one reply.
func (p *testPeer) deliverTo(a *testPeer, now time.Time, m Message) Message {
	p.t.Helper()
	rs := a.deliver(now, p, m)
	if len(rs) != 1 {
		p.t.Fatalf("got %d replies, want 1", len(rs))
	}
	return rs[0]
}

// TestProvidersReplyKeepsContacts (issue 12, row (d) stalling): a storing
// node whose records for a content ID would fill the datagram (24 Sybils on
// 24 networks and the publisher) still tells the asker of closer nodes, so
// a lookup that starts from a nearly empty table (a node just started)
// goes on past it.
func TestProvidersReplyKeepsContacts(t *testing.T) {
	now := t0.Add(time.Hour)
	key := Key{0x52, 0xb2}
	a := newTestPeer(t, 1, Config{})
	for i := range 25 {
		s := newTestPeer(t, uint64(200+i), Config{})
		s.addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, byte(i), 9}), 4000)
		if st := storeAt(t, a, s, key, now); st != AckStored {
			t.Fatalf("record %d: ack %d, want stored", i, st)
		}
	}
	for i := range 10 {
		a.core.table.seen(Contact{ID: newTestPeer(t, uint64(300+i), Config{}).kp.Public().PeerID(), Addr: testAddr(300 + i)}, now)
	}
	asker := newTestPeer(t, 999, Config{})
	rs := asker.deliverTo(a, now, Message{Type: MsgGetProviders, TxID: 10, Target: key})
	if len(rs.Contacts) < minReplyContacts || len(rs.Records) == 0 {
		t.Fatalf("reply carries %d records and %d contacts; want records and at least %d contacts", len(rs.Records), len(rs.Contacts), minReplyContacts)
	}
}

// TestProvidersPages (issue 12, row (d) stalling): a storing node holding
// 25 records from 25 networks lists about 5 per datagram; an asker that
// pages through them (get providers with a skip) sees every one exactly
// once, and a provider lookup through that one node reports all 25.
func TestProvidersPages(t *testing.T) {
	now := t0.Add(time.Hour)
	key := Key{0x53, 0xb3}
	a := newTestPeer(t, 1, Config{})
	want := map[string]bool{}
	for i := range 25 {
		s := newTestPeer(t, uint64(400+i), Config{})
		s.addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, byte(i), 9}), 4000)
		if st := storeAt(t, a, s, key, now); st != AckStored {
			t.Fatalf("record %d: ack %d, want stored", i, st)
		}
		want[s.kp.Public().PeerID().String()] = true
	}
	asker := newTestPeer(t, 999, Config{})
	got := map[string]int{}
	var skip uint16
	pages := 0
	for ; pages < 20; pages++ {
		rs := asker.deliverTo(a, now, Message{Type: MsgGetProviders, Target: key, Skip: skip})
		if len(rs.Records) == 0 {
			break
		}
		for _, r := range rs.Records {
			got[r.Key.PeerID().String()]++
		}
		skip += uint16(len(rs.Records))
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("provider %s listed %d times over %d pages, want once", id[:12], got[id], pages)
		}
	}

	// A lookup through a as its only contact finds all 25.
	b := newTestPeer(t, 998, Config{})
	b.core.table.seen(Contact{ID: a.kp.Public().PeerID(), Addr: a.addr}, now)
	id := b.core.FindProviders(now, key)
	found := map[string]bool{}
	rd := readyOf(b.core)
	for range 40 {
		for _, e := range rd.Events {
			if e.Lookup != id {
				continue
			}
			if e.Kind == EventProvider {
				found[e.Provider.ID.String()] = true
			}
		}
		if len(rd.Messages) == 0 {
			break
		}
		for _, o := range rd.Messages {
			if o.To != a.addr {
				continue
			}
			m, err := DecodeMessage(o.Payload)
			if err != nil {
				t.Fatal(err)
			}
			txid := m.TxID
			for _, r := range a.deliver(now, b, m) {
				r.TxID = txid
				b.core.HandleMessage(now, a.addr, a.kp.Public(), r.Append(nil))
			}
		}
		rd = readyOf(b.core)
	}
	// (It does not end here: a's reply named other nodes, which never
	// answer in this test.)
	if len(found) != 25 {
		t.Fatalf("the lookup found %d providers, want all 25", len(found))
	}
}
