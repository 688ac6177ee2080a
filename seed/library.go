package seed

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// ItemKind says how an item came into the library.
type ItemKind string

// Item kinds.
const (
	KindPublished  ItemKind = "published"  // hashed here from a local path, served in place
	KindDownloaded ItemKind = "downloaded" // fetched from a swarm, complete
	KindPartial    ItemKind = "partial"    // fetched from a swarm, not yet complete
	// KindCache is an item of the gateway's cache (docs/gateway.md): the
	// chunks readers read, kept within gateway_cache. Listed, not stored
	// in library.json.
	KindCache ItemKind = "cache"
)

// Item is one entry of the library: something the node seeds.
type Item struct {
	ID    string    `json:"id"`             // content ID, text form
	Name  string    `json:"name"`           // the manifest's name
	Kind  ItemKind  `json:"kind"`           // how it came here
	Path  string    `json:"path"`           // published: the source; downloads: the output
	Size  int64     `json:"size"`           // content bytes
	Added time.Time `json:"added"`          // when it entered the library
	Link  string    `json:"link,omitempty"` // filled in by Items and Publish, not stored

	// An unfinished download (kind partial) lives in Partial, a hidden
	// folder beside Path, until it is complete and renamed to Path.
	Partial    string `json:"partial,omitempty"`
	PartialDev uint64 `json:"partial_dev,omitempty"` // device and inode of Partial when made
	PartialIno uint64 `json:"partial_ino,omitempty"`
	// Background: the node keeps downloading it, across restarts.
	Background bool `json:"background,omitempty"`
	// Cached is the disk space a gateway cache item takes (KindCache).
	Cached int64 `json:"cached,omitempty"`
	// Parity says, for a downloaded item, that it does not hold all its
	// parity chunks yet: ParityRebuilding (the node makes them while it
	// seeds what it holds), ParityPending (a node started for one
	// command; the next node to run rebuilds it) or ParityFailed (the
	// output changed on disk, or the disk failed: the node's log says
	// which; it serves the chunks it holds). Filled in by Items, not
	// stored: the store's bitmap is the record.
	Parity string `json:"parity,omitempty"`

	madeOut bool // this download made the output folder (not stored)
}

// The values of Item.Parity.
const (
	ParityRebuilding = "rebuilding"
	ParityPending    = "pending"
	ParityFailed     = "failed"
)

// library is the persisted list of items, kept in library.json in the data
// folder and rewritten atomically on every change. Safe for concurrent use.
type library struct {
	path string

	mu    sync.Mutex
	items map[string]Item
}

const libraryVersion = 1

type libraryFile struct {
	Version int    `json:"version"`
	Items   []Item `json:"items"`
}

func openLibrary(dataDir string) (*library, error) {
	l := &library{path: filepath.Join(dataDir, "library.json"), items: map[string]Item{}}
	b, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading library: %w", err)
	}
	var f libraryFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("library %s is damaged (%v); move it away to start with an empty library", l.path, err)
	}
	if f.Version != libraryVersion {
		return nil, fmt.Errorf("library %s has version %d, this shoal reads %d", l.path, f.Version, libraryVersion)
	}
	for _, it := range f.Items {
		it.Link, it.Parity = "", ""
		l.items[it.ID] = it
	}
	return l, nil
}

// put adds or replaces an item and saves the library.
func (l *library) put(it Item) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	old, had := l.items[it.ID]
	l.items[it.ID] = it
	if err := l.saveLocked(); err != nil {
		if had {
			l.items[it.ID] = old
		} else {
			delete(l.items, it.ID)
		}
		return err
	}
	return nil
}

// remove deletes an item and saves the library.
func (l *library) remove(id string) (Item, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	it, ok := l.items[id]
	if !ok {
		return Item{}, fmt.Errorf("%w: %s", ErrNotInLibrary, id)
	}
	delete(l.items, id)
	if err := l.saveLocked(); err != nil {
		l.items[id] = it
		return Item{}, err
	}
	return it, nil
}

func (l *library) get(id string) (Item, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	it, ok := l.items[id]
	return it, ok
}

// list returns the items, oldest first.
func (l *library) list() []Item {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Item, 0, len(l.items))
	for _, it := range l.items {
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b Item) int {
		if c := a.Added.Compare(b.Added); c != 0 {
			return c
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out
}

func (l *library) saveLocked() error {
	f := libraryFile{Version: libraryVersion}
	for _, it := range l.items {
		f.Items = append(f.Items, it)
	}
	slices.SortFunc(f.Items, func(a, b Item) int {
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(l.path, b, 0o600); err != nil {
		return fmt.Errorf("saving library: %w", err)
	}
	return nil
}
