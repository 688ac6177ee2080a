package dht

import (
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// replayKey names a request: its sender, transaction ID and type. Senders
// draw transaction IDs at random and never resend a request, so a second
// copy is a replay (or a duplicate the network made).
type replayKey struct {
	id   identity.PeerID
	txid uint32
	typ  MsgType
}

// replayCache remembers recent requests in two generations: a request is
// new if neither holds it. The current generation becomes the previous one
// every replayWindow or when it holds replayCap keys, whichever comes
// first, so a request is remembered for at least min(replayWindow, the time
// replayCap requests take) and memory is bounded by 2*replayCap keys.
type replayCache struct {
	cur, prev map[replayKey]struct{}
	since     time.Time // when cur started
}

const (
	replayWindow = 10 * time.Minute
	replayCap    = 16384
)

func newReplayCache(now time.Time) replayCache {
	return replayCache{cur: make(map[replayKey]struct{}), prev: make(map[replayKey]struct{}), since: now}
}

// add records k and reports whether it was new.
func (r *replayCache) add(now time.Time, k replayKey) bool {
	if _, ok := r.cur[k]; ok {
		return false
	}
	if _, ok := r.prev[k]; ok {
		return false
	}
	if len(r.cur) >= replayCap {
		r.shift(now)
	}
	r.cur[k] = struct{}{}
	return true
}

// rotate starts a new generation once the current one is replayWindow old.
func (r *replayCache) rotate(now time.Time) {
	if now.Sub(r.since) >= replayWindow {
		r.shift(now)
	}
}

func (r *replayCache) shift(now time.Time) {
	r.prev, r.cur = r.cur, r.prev
	clear(r.cur)
	r.since = now
}
