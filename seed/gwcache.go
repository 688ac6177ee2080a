package seed

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/gateway"
)

// The gateway cache: what on-demand downloads fetched, one folder per item
// (gatewayDir/<id>/<name>, sparse: only the chunks fetched take disk space)
// and its store entry. Anyone who reaches the gateway decides what it
// fetches, so the cache is held to Config.GatewayCache bytes, counted as
// the disk blocks its files take (st_blocks), store entries included.
//
// A reader is charged when it opens an item and then every gwChargeEvery
// bytes it reads: the items no reader holds are evicted, least recently
// read first, until what the item may grow by before the next charge (its
// size left to fetch, at most gwReserve) fits. If it cannot fit, because
// every item left is being read, the open fails with ErrCacheFull (the
// gateway answers 503 with Retry-After) or the read ends there (a short
// body): the cache never fetches beyond its budget for a reader. Readers
// of several items at once may together pass it by their read-ahead; the
// keeper, woken by every download's progress, then evicts idle items.
// The node's own users (shoal cat, get --only: the authenticated API) are
// not refused: they only evict idle items, and what they fetched goes once
// they left and the keeper measures.
//
// Cache items are listed by Items (KindCache) and removed by Remove; New
// drops any whose store entry or folder is missing or inconsistent.

// DefaultGatewayCache is the gateway cache's default budget.
const DefaultGatewayCache = 4 << 30

// gwReserve is the most an opened item is expected to grow by before its
// reader is charged again: the bytes read between charges (4 MiB), the
// read-ahead past them (8 MiB) and the rounding of focus to stripes, with
// room to spare.
const gwReserve = 24 << 20

// ErrCacheFull: the gateway cache is full of content being read. It is
// ErrBusy across the API and 503 at the gateway.
var ErrCacheFull error = cacheFullError{}

type cacheFullError struct{}

func (cacheFullError) Error() string {
	return "the gateway cache is full of content being read; try again when a reader has left (or raise gateway_cache)"
}
func (cacheFullError) Unwrap() []error { return []error{ErrBusy, gateway.ErrUnavailable} }

var errNotCached = errors.New("seed: the content left the gateway cache while it was read")

// gwEntry is one item of the gateway cache.
type gwEntry struct {
	name     string
	size     int64     // content bytes
	bytes    int64     // disk bytes at the last measure
	lastRead time.Time // admission time of its last reader
	d        *gwDownload
}

func (e *gwEntry) inUse() bool { return e.d != nil && e.d.refs > 0 }

// gwEntryDir is the folder holding the cached item id.
func (n *Node) gwEntryDir(id chunker.ContentID) string {
	return filepath.Join(n.cfg.DataDir, gatewayDir, id.String())
}

// gwEntryLocked returns id's entry, made if missing; gw.mu is held.
func (n *Node) gwEntryLocked(id chunker.ContentID) *gwEntry {
	if n.gw.entries == nil {
		n.gw.entries = map[chunker.ContentID]*gwEntry{}
	}
	e := n.gw.entries[id]
	if e == nil {
		e = &gwEntry{lastRead: time.Now()}
		n.gw.entries[id] = e
	}
	return e
}

// gwKick wakes the keeper without waiting.
func (n *Node) gwKick() {
	select {
	case n.gw.kick <- struct{}{}:
	default:
	}
}

// gwClosed records that d, the download of id, has ended and closed.
func (n *Node) gwClosed(id chunker.ContentID, d *gwDownload) {
	n.gw.mu.Lock()
	if e := n.gw.entries[id]; e != nil && e.d == d {
		e.d = nil
	}
	n.gw.mu.Unlock()
	n.gwKick()
}

// keepGatewayCache holds the cache to its budget while downloads grow it.
func (n *Node) keepGatewayCache(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.gw.kick:
		}
		n.gw.admit.Lock()
		total := n.gwMeasure()
		if total > n.gw.budget {
			n.gwEvict(chunker.ContentID{}, total, 0)
		}
		n.gw.admit.Unlock()
	}
}

// gwMeasure measures the items whose download runs and returns the cache's
// bytes; gw.admit is held.
func (n *Node) gwMeasure() int64 {
	n.gw.mu.Lock()
	var ids []chunker.ContentID
	for id, e := range n.gw.entries {
		if e.d != nil {
			ids = append(ids, id)
		}
	}
	n.gw.mu.Unlock()
	sizes := make([]int64, len(ids))
	for i, id := range ids {
		sizes[i] = n.gwDiskBytes(id)
	}
	n.gw.mu.Lock()
	defer n.gw.mu.Unlock()
	for i, id := range ids {
		if e := n.gw.entries[id]; e != nil {
			e.bytes = sizes[i]
		}
	}
	var total int64
	for _, e := range n.gw.entries {
		total += e.bytes
	}
	return total
}

// gwDiskBytes is the disk space the cached item id takes: its folder and
// its store entry.
func (n *Node) gwDiskBytes(id chunker.ContentID) int64 {
	return treeDiskBytes(n.gwEntryDir(id)) + treeDiskBytes(filepath.Join(n.store.Dir(), "items", id.String()))
}

// treeDiskBytes sums the disk blocks of the files under root.
func treeDiskBytes(root string) int64 {
	var sum int64
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			sum += diskBytes(fi)
		}
		return nil
	})
	return sum
}

// gwEvict evicts the items no reader holds, least recently read first and
// never keep, until total+need fits the budget; it returns the new total.
// gw.admit is held.
func (n *Node) gwEvict(keep chunker.ContentID, total, need int64) int64 {
	type victim struct {
		id       chunker.ContentID
		lastRead time.Time
	}
	n.gw.mu.Lock()
	var vs []victim
	for id, e := range n.gw.entries {
		if id != keep && !e.inUse() {
			vs = append(vs, victim{id, e.lastRead})
		}
	}
	n.gw.mu.Unlock()
	slices.SortFunc(vs, func(a, b victim) int { return a.lastRead.Compare(b.lastRead) })
	for _, v := range vs {
		if total+need <= n.gw.budget {
			break
		}
		freed, err := n.gwDrop(v.id, errors.New("seed: evicted from the gateway cache"), false)
		if err != nil {
			continue // read again meanwhile, or already gone
		}
		total -= freed
		n.gw.evictions.Add(1)
		n.log.Info("gateway cache: evicted", "content", v.id.String(), "bytes", freed)
	}
	return total
}

// gwAdmit makes room in the cache for a reader of id (manifest m) to read
// on, or, when charged, refuses it with ErrCacheFull, counted in refused.
func (n *Node) gwAdmit(id chunker.ContentID, m *chunker.Manifest, refused *atomic.Int64, charged bool) error {
	n.gw.admit.Lock()
	defer n.gw.admit.Unlock()
	total := n.gwMeasure()
	n.gw.mu.Lock()
	if n.gw.entries[id] == nil && n.gw.dls[id] == nil {
		n.gw.mu.Unlock()
		return errNotCached // removed while read (shoal rm, a get took over)
	}
	e := n.gwEntryLocked(id)
	e.name, e.size, e.lastRead = m.Name, m.Size, time.Now()
	// What the item may still grow by: its data and leaf layer, less what
	// it holds, at most gwReserve before the next charge; nothing once it
	// holds every data chunk.
	full := m.Size + 32*int64(m.NumChunks()) + 64<<10
	need := max(0, min(full-e.bytes, gwReserve))
	if d := n.gw.dls[id]; d != nil {
		if c := d.dl.Chunker(); c != nil && c.Complete() {
			need = 0
		}
	}
	n.gw.mu.Unlock()
	if total+need > n.gw.budget {
		total = n.gwEvict(id, total, need)
	}
	if total+need > n.gw.budget && charged && need > 0 {
		refused.Add(1)
		n.log.Info("gateway cache full of content being read: read refused", "content", id.String(), "cache", total, "need", need, "budget", n.gw.budget)
		return ErrCacheFull
	}
	return nil
}

// gwRemove removes the cached item id, ending its download and its
// readers; it returns what it was.
func (n *Node) gwRemove(id chunker.ContentID, cause error) (Item, error) {
	n.gw.admit.Lock()
	defer n.gw.admit.Unlock()
	it, ok := n.gwItem(id)
	if !ok {
		return Item{}, Errorf(ErrNotFound, "%s is not in the gateway cache", id)
	}
	if _, err := n.gwDrop(id, cause, true); err != nil {
		return Item{}, err
	}
	return it, nil
}

// gwDrop stops the download of id (if no reader holds it, unless force),
// deletes its files and forgets it; it returns the bytes it took. gw.admit
// is held.
func (n *Node) gwDrop(id chunker.ContentID, cause error, force bool) (int64, error) {
	n.gw.mu.Lock()
	e := n.gw.entries[id]
	if e == nil {
		n.gw.mu.Unlock()
		return 0, Errorf(ErrNotFound, "%s is not in the gateway cache", id)
	}
	if e.inUse() && !force {
		n.gw.mu.Unlock()
		return 0, Errorf(ErrBusy, "%s is being read", id)
	}
	d := n.gw.dls[id]
	if d != nil {
		delete(n.gw.dls, id)
		if d.idle != nil {
			d.idle.Stop()
		}
	}
	delete(n.gw.entries, id)
	n.gw.mu.Unlock()
	if d != nil {
		d.cancel(cause)
		<-d.done
	}
	freed := n.gwDiskBytes(id)
	if err := n.store.Remove(id); err != nil && !errors.Is(err, chunker.ErrNotFound) {
		return 0, err
	}
	if err := os.RemoveAll(n.gwEntryDir(id)); err != nil {
		return 0, fmt.Errorf("seed: removing the gateway cache of %s: %w", id, err)
	}
	return freed, nil
}

// gwItem describes the cached item id as a library item.
func (n *Node) gwItem(id chunker.ContentID) (Item, bool) {
	n.gw.mu.Lock()
	defer n.gw.mu.Unlock()
	e := n.gw.entries[id]
	if e == nil {
		return Item{}, false
	}
	it := Item{ID: id.String(), Name: e.name, Kind: KindCache, Size: e.size, Cached: e.bytes,
		Added: e.lastRead.UTC().Truncate(time.Second)}
	if e.name != "" {
		it.Path = filepath.Join(n.gwEntryDir(id), e.name)
	}
	return it, true
}

// gwItems lists the cache, least recently read first.
func (n *Node) gwItems() []Item {
	n.gw.mu.Lock()
	ids := make([]chunker.ContentID, 0, len(n.gw.entries))
	for id := range n.gw.entries {
		ids = append(ids, id)
	}
	n.gw.mu.Unlock()
	var out []Item
	for _, id := range ids {
		if it, ok := n.gwItem(id); ok && it.Name != "" {
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b Item) int {
		if c := a.Added.Compare(b.Added); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// gwCacheStats returns the cache's bytes (at the last measure) and items.
func (n *Node) gwCacheStats() (bytes int64, items int) {
	n.gw.mu.Lock()
	defer n.gw.mu.Unlock()
	for _, e := range n.gw.entries {
		bytes += e.bytes
	}
	return bytes, len(n.gw.entries)
}

// loadGatewayCache finds the cache's items on disk: store entries of
// downloads whose output is gatewayDir/<id>/<name>. Anything else under
// gatewayDir (a folder without a store entry, an entry whose output is
// gone, the older layout without the <id> folder) is deleted, with its
// store entry; the library's own items are never touched.
func (n *Node) loadGatewayCache() {
	dir := filepath.Join(n.cfg.DataDir, gatewayDir)
	n.gw.entries = map[chunker.ContentID]*gwEntry{}
	n.gw.kick = make(chan struct{}, 1)
	infos, err := n.store.List()
	if err != nil {
		n.log.Warn("gateway cache: cannot list the store", "err", err)
		return
	}
	for _, info := range infos {
		if !info.Download || !strings.HasPrefix(info.Root, dir+string(filepath.Separator)) {
			continue
		}
		if _, inLib := n.lib.get(info.ID.String()); inLib {
			continue // a get's download; preparePart decides
		}
		want := filepath.Join(n.gwEntryDir(info.ID), info.Manifest.Name)
		fi, err := os.Lstat(want)
		if info.Root != want || err != nil || fi.IsDir() != info.Manifest.Folder {
			n.log.Info("gateway cache: dropping an inconsistent item", "content", info.ID.String(), "root", info.Root)
			n.store.Remove(info.ID)
			continue
		}
		n.gw.entries[info.ID] = &gwEntry{name: info.Manifest.Name, size: info.Manifest.Size,
			bytes: n.gwDiskBytes(info.ID), lastRead: fi.ModTime()}
	}
	ents, _ := os.ReadDir(dir)
	for _, de := range ents {
		id, err := chunker.ParseID(de.Name())
		if err == nil && n.gw.entries[id] != nil {
			continue
		}
		if err == nil {
			if _, inLib := n.lib.get(id.String()); !inLib {
				if _, err := n.store.Info(id); err != nil {
					n.store.Remove(id) // unreadable: nothing else refers to it
				}
			}
		}
		n.log.Info("gateway cache: deleting a leftover", "path", filepath.Join(dir, de.Name()))
		os.RemoveAll(filepath.Join(dir, de.Name()))
	}
}
