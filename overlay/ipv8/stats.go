package ipv8

import "sync/atomic"

// Stats counts datagrams. Every received datagram lands in exactly one of
// Delivered, Answered or a Dropped counter.
type Stats struct {
	Received  uint64 // datagrams handed to the endpoint
	Delivered uint64 // messages passed to a community handler
	Answered  uint64 // messages consumed by a waiting Request

	DroppedOversized        uint64 // longer than MaxDatagramSize
	DroppedMalformed        uint64 // bad header, lengths or key
	DroppedBadSignature     uint64 // signature did not verify
	DroppedUnknownCommunity uint64 // no community registered for the ID
	DroppedUnknownMessage   uint64 // community does not speak the message ID
	DroppedRateLimited      uint64 // source or its host over its rate
	// DroppedRateLimitedHost counts the datagrams of DroppedRateLimited
	// refused by the host's budget (HostRatePerSecond) rather than the
	// source's own.
	DroppedRateLimitedHost uint64

	Sent          uint64 // datagrams written
	SendErrors    uint64 // writes that failed
	SendOversized uint64 // sends refused for size
}

// Dropped returns the sum of the Dropped counters.
func (s Stats) Dropped() uint64 {
	return s.DroppedOversized + s.DroppedMalformed + s.DroppedBadSignature +
		s.DroppedUnknownCommunity + s.DroppedUnknownMessage + s.DroppedRateLimited
}

type counters struct {
	received, delivered, answered                 atomic.Uint64
	oversized, malformed, badSignature            atomic.Uint64
	unknownCommunity, unknownMessage, rateLimited atomic.Uint64
	hostLimited                                   atomic.Uint64
	sent, sendErrors, sendOversized               atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (e *Endpoint) Stats() Stats {
	c := &e.stats
	return Stats{
		Received: c.received.Load(), Delivered: c.delivered.Load(), Answered: c.answered.Load(),
		DroppedOversized: c.oversized.Load(), DroppedMalformed: c.malformed.Load(),
		DroppedBadSignature: c.badSignature.Load(), DroppedUnknownCommunity: c.unknownCommunity.Load(),
		DroppedUnknownMessage: c.unknownMessage.Load(), DroppedRateLimited: c.rateLimited.Load(),
		DroppedRateLimitedHost: c.hostLimited.Load(),
		Sent:                   c.sent.Load(), SendErrors: c.sendErrors.Load(), SendOversized: c.sendOversized.Load(),
	}
}

// CommunityStats counts the datagrams of one community ID. Every
// received datagram of a registered community lands in exactly one of
// Delivered, Answered or a Dropped counter.
type CommunityStats struct {
	Received  uint64 // datagrams with this community ID, past the rate limit
	Delivered uint64 // messages passed to a handler
	Answered  uint64 // messages consumed by a waiting Request

	DroppedMalformed      uint64 // bad lengths or key
	DroppedBadSignature   uint64 // signature did not verify
	DroppedUnknownMessage uint64 // no registered Community speaks the message ID
	DroppedRateLimited    uint64 // source over its rate (not in Received)

	Sent uint64 // datagrams written
}

type comCounters struct {
	received, delivered, answered                        atomic.Uint64
	malformed, badSignature, unknownMessage, rateLimited atomic.Uint64
	sent                                                 atomic.Uint64
}

// CommunityStats returns the counters of community id, and false if id
// was never registered.
func (e *Endpoint) CommunityStats(id CommunityID) (CommunityStats, bool) {
	c := e.counters(id)
	if c == nil {
		return CommunityStats{}, false
	}
	return CommunityStats{
		Received: c.received.Load(), Delivered: c.delivered.Load(), Answered: c.answered.Load(),
		DroppedMalformed: c.malformed.Load(), DroppedBadSignature: c.badSignature.Load(),
		DroppedUnknownMessage: c.unknownMessage.Load(), DroppedRateLimited: c.rateLimited.Load(),
		Sent: c.sent.Load(),
	}, true
}

// Communities returns the IDs ever registered, in no particular order.
func (e *Endpoint) Communities() []CommunityID {
	m := e.loadPerCom()
	ids := make([]CommunityID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	return ids
}
