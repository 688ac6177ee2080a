package dht

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// handleRequest answers a request from a node that passed the rate limit.
func (c *Core) handleRequest(now time.Time, from netip.AddrPort, sender identity.PublicKey, id identity.PeerID, m Message) {
	switch m.Type {
	case MsgPing:
		c.send(from, Message{Type: MsgPong, TxID: m.TxID, Observed: from})
	case MsgFindNode:
		c.send(from, Message{Type: MsgNodes, TxID: m.TxID, Contacts: c.closestExcept(m.Target, id)})
	case MsgGetProviders:
		c.send(from, c.providersReply(now, from, id, m))
	case MsgAddProvider:
		c.send(from, Message{Type: MsgAddProviderAck, TxID: m.TxID, Status: c.addProvider(now, from, sender, id, m)})
	}
}

// closestExcept returns our k closest contacts to target, leaving out the
// requester.
func (c *Core) closestExcept(target Key, requester identity.PeerID) []Contact {
	cs := c.table.closest(make([]Contact, 0, c.cfg.K+1), target, c.cfg.K+1)
	cs = slices.DeleteFunc(cs, func(x Contact) bool { return x.ID == requester })
	return cs[:min(len(cs), c.cfg.K)]
}

// minReplyContacts is how many closer contacts a providers reply keeps room
// for before its records: without them a lookup that meets storing nodes
// whose records fill the datagram (a content ID crowded with Sybil records)
// learns no other node and stalls.
const minReplyContacts = 4

// providersReply builds a providers reply within MaxMessageSize: room for
// minReplyContacts closer contacts, then records (a sample across source
// groups, so Sybil records from one network cannot crowd out the others),
// then as many closer contacts as fit.
func (c *Core) providersReply(now time.Time, from netip.AddrPort, id identity.PeerID, m Message) Message {
	reply := Message{Type: MsgProviders, TxID: m.TxID, Token: c.tokens.make(from, id)}
	size := headerSize + 1 + len(reply.Token) + 1 + 1
	contacts := c.closestExcept(m.Target, id)
	reserve := 0
	for _, ct := range contacts[:min(len(contacts), minReplyContacts)] {
		reserve += 32 + addrSize(ct.Addr)
	}
	recs := c.store.sample(m.Target, now, c.pageOrder(id, m.Target))
	recs = recs[min(len(recs), int(m.Skip)):]
	for _, r := range recs {
		if size+reserve+r.size() > MaxMessageSize || len(reply.Records) == 255 {
			break
		}
		size += r.size()
		reply.Records = append(reply.Records, *r)
	}
	for _, ct := range contacts {
		n := 32 + addrSize(ct.Addr)
		if size+n > MaxMessageSize {
			break
		}
		size += n
		reply.Contacts = append(reply.Contacts, ct)
	}
	return reply
}

// pageOrder returns the randomness that orders a content ID's records for
// one requester: the same for every page it asks (get providers with a
// skip), different for other requesters and after a restart.
func (c *Core) pageOrder(requester identity.PeerID, key Key) *rand.Rand {
	h := sha256.New()
	var salt [16]byte
	binary.BigEndian.PutUint64(salt[:8], c.pageSalt[0])
	binary.BigEndian.PutUint64(salt[8:], c.pageSalt[1])
	h.Write(salt[:])
	h.Write(requester[:])
	h.Write(key[:])
	sum := h.Sum(nil)
	return rand.New(rand.NewPCG(binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16])))
}

// addProvider checks and stores a record; it returns the ack status.
func (c *Core) addProvider(now time.Time, from netip.AddrPort, sender identity.PublicKey, id identity.PeerID, m Message) uint8 {
	if !c.tokens.valid(m.Token, from, id) {
		c.counters.BadTokens++
		return AckBadToken
	}
	r := &m.Records[0]
	if r.Key != sender {
		c.counters.ForeignRecords++
		return AckForeignRecord
	}
	if st := c.checkRecord(r, r.Content, now); st != AckStored {
		return st
	}
	if st := c.store.put(*r, sourceGroup(from.Addr())); st != AckStored {
		c.counters.StoreFull++
		return st
	}
	c.counters.RecordsStored++
	return AckStored
}
