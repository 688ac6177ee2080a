package dht

import (
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Bootstrap pings addrs, then looks up our own ID through the nodes that
// answered. Its EventDone has ErrNoContacts when nobody answered and the
// table is empty.
func (c *Core) Bootstrap(now time.Time, addrs []netip.AddrPort) LookupID {
	l := c.newLookup(now, kindBootstrap, Key(c.self), false)
	l.phase = phasePing
	for _, a := range addrs {
		if !validAddr(a) {
			continue
		}
		l.pingsPending++
		l.stats.Requests++
		c.request(now, a, identity.PeerID{}, Message{Type: MsgPing}, forBootstrap, l.id, nil)
	}
	if l.pingsPending == 0 {
		l.pingsPending = 1
		c.bootstrapAnswered(now, l) // go straight to the table, or fail
	}
	return l.id
}

// FindNode looks up the k nodes closest to target.
func (c *Core) FindNode(now time.Time, target Key) LookupID {
	return c.startLookup(now, kindFindNode, target, false).id
}

// FindProviders looks up providers of key. Records we hold ourselves are
// reported first. Each provider is reported once, as an EventProvider; the
// lookup ends after MaxProvidersPerLookup providers or when the k closest
// nodes have answered.
func (c *Core) FindProviders(now time.Time, key Key) LookupID {
	l := c.newLookup(now, kindProviders, key, false)
	for _, r := range c.store.get(key, now) {
		c.foundProvider(l, r, 0)
	}
	if len(l.providers) >= c.cfg.MaxProvidersPerLookup {
		c.finish(now, l, nil)
		return l.id
	}
	c.seedLookup(now, l)
	return l.id
}

// Provide announces that we serve key: a lookup for the k closest nodes,
// then our signed record to each. We republish every RepublishInterval
// until StopProviding. EventDone has ErrNotStored if no node took the
// record.
func (c *Core) Provide(now time.Time, key Key) LookupID {
	c.providing[key] = &provision{next: now.Add(c.cfg.RepublishInterval)}
	return c.startLookup(now, kindProvide, key, false).id
}

// StopProviding stops republishing key. Stored records expire on their own.
func (c *Core) StopProviding(key Key) { delete(c.providing, key) }

// Cancel forgets a lookup; no more events are produced for it. Its pending
// requests run out on their own.
func (c *Core) Cancel(id LookupID) { delete(c.lookups, id) }
