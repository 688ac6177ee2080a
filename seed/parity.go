package seed

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/shoal-p2p/shoal/chunker"
)

// A download fetches every data chunk and only the parity chunks it
// needed; Get installs the output as soon as the data is complete,
// verified and synced, and returns. The parity it did not fetch is rebuilt
// here afterwards, one item at a time, while the node already seeds what
// it holds (chunker.Item.RebuildParity: each chunk is announced once it is
// on disk and recorded in the store's bitmap, so a node restarted at any
// point offers only the parity it holds, and rebuilds the rest).
//
// A node started for one command (Config.Transient) rebuilds nothing: it
// ends with the command, nobody seeds from it meanwhile, and the next
// node to run on the data folder rebuilds the parity.

// parityQueue holds the items waiting for their parity to be rebuilt.
type parityQueue struct {
	mu      sync.Mutex
	waiting []chunker.ContentID        // in the order seed found them
	current chunker.ContentID          // being rebuilt (zero: none)
	failed  map[chunker.ContentID]bool // the last rebuild failed (until queued again)
	wake    chan struct{}              // capacity 1: an item was queued
}

// testHookParity, set by tests, runs before an item's rebuild starts.
var testHookParity = func(ctx context.Context, id chunker.ContentID) {}

// queueParity asks the rebuilder to make id's missing parity.
func (n *Node) queueParity(id chunker.ContentID) {
	if n.cfg.Transient {
		return
	}
	q := &n.parity
	q.mu.Lock()
	if !slices.Contains(q.waiting, id) { // current is queued again: it may be a new Item
		q.waiting = append(q.waiting, id)
	}
	delete(q.failed, id)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// hasFailed reports whether the last rebuild of id's parity failed.
func (q *parityQueue) hasFailed(id chunker.ContentID) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failed[id]
}

// fail records that id's rebuild failed.
func (q *parityQueue) fail(id chunker.ContentID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.failed == nil {
		q.failed = map[chunker.ContentID]bool{}
	}
	q.failed[id] = true
}

// rebuildingCount is how many items are being rebuilt or wait for it.
func (n *Node) rebuildingCount() int {
	q := &n.parity
	q.mu.Lock()
	defer q.mu.Unlock()
	c := len(q.waiting)
	if q.current != (chunker.ContentID{}) {
		c++
	}
	return c
}

// next takes the next queued item, or reports none.
func (q *parityQueue) next() (chunker.ContentID, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 {
		return chunker.ContentID{}, false
	}
	q.current = q.waiting[0]
	q.waiting = q.waiting[1:]
	return q.current, true
}

// done ends the current item.
func (q *parityQueue) done() {
	q.mu.Lock()
	q.current = chunker.ContentID{}
	q.mu.Unlock()
}

// keepParity rebuilds queued items' parity, one at a time, until ctx ends.
func (n *Node) keepParity(ctx context.Context) {
	for {
		id, ok := n.parity.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-n.parity.wake:
			}
			continue
		}
		n.rebuildParity(ctx, id)
		n.parity.done()
		if ctx.Err() != nil {
			return // what waits is queued again at the next start
		}
	}
}

// rebuildParity rebuilds the parity of the item the node seeds for id and
// tells the sessions open on it of each chunk once recorded.
func (n *Node) rebuildParity(ctx context.Context, id chunker.ContentID) {
	n.mu.Lock()
	it := n.seeding[id]
	n.mu.Unlock()
	if it == nil || it.MissingParity() == 0 {
		return
	}
	testHookParity(ctx, id)
	missing := it.MissingParity()
	n.metrics.ParityRebuilds.Add(1)
	n.log.Info("rebuilding parity", "content", id, "chunks", missing)
	err := it.RebuildParity(ctx, func(chunks []int) {
		n.metrics.ParityChunksRebuilt.Add(int64(len(chunks)))
		for _, i := range chunks {
			n.srv.NotifyHave(id, i)
		}
	})
	switch {
	case err == nil:
		n.metrics.ParityRebuilt.Add(1)
		n.log.Info("parity rebuilt", "content", id, "chunks", missing)
	case ctx.Err() != nil:
	case errors.Is(err, chunker.ErrClosed):
		// Removed, or seeded again from a new Item (which queued itself).
	default:
		n.metrics.ParityRebuildFailures.Add(1)
		n.parity.fail(id)
		n.log.Warn("cannot rebuild parity; the item serves the chunks it holds", "content", id, "err", err)
	}
}
