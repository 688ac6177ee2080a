package chunker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// holding is what every stored item has: its manifest, leaves, content and
// parity file. Its read methods may be called concurrently.
type holding struct {
	id     ContentID
	man    *Manifest
	enc    []byte
	leaves *LeafLayer
	data   *content
	parity *os.File     // nil when m = 0
	dir    string       // item folder in the store
	vc     *verifyCache // nil: hash every chunk read

	closeOnce sync.Once
	closeErr  error
}

func openHolding(s *Store, id ContentID, write bool) (*holding, itemMeta, error) {
	dir := s.itemDir(id)
	m, enc, err := readManifest(dir, id)
	if err != nil {
		return nil, itemMeta{}, err
	}
	meta, err := readMeta(dir)
	if err != nil {
		return nil, itemMeta{}, fmt.Errorf("%s: %w", id, err)
	}
	leaves, err := readLeavesFile(dir, m)
	if err != nil {
		return nil, itemMeta{}, fmt.Errorf("%s: %w", id, err)
	}
	h := &holding{id: id, man: m, enc: enc, leaves: leaves, dir: dir, data: newContent(m, meta.root, write)}
	if m.ParityShards > 0 && m.NumChunks() > 0 {
		// Read-write even for serving: a parity chunk found damaged is
		// rebuilt and written back (see rebuildParity).
		if h.parity, err = os.OpenFile(filepath.Join(dir, fileParity), os.O_RDWR, 0); err != nil {
			return nil, itemMeta{}, fmt.Errorf("%s: parity: %w", id, err)
		}
	}
	return h, meta, nil
}

// readRaw reads chunk i into buf (grown if needed) without verifying it.
func (h *holding) readRaw(i int, buf []byte) ([]byte, error) {
	n := h.man.ChunkLen(i)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	var err error
	if off := h.man.DataChunkOffset(i); off >= 0 {
		err = h.data.ReadAt(buf, off)
	} else {
		_, err = h.parity.ReadAt(buf, h.man.parityOffset(i))
	}
	if err != nil {
		return nil, fmt.Errorf("reading chunk %d: %w", i, err)
	}
	return buf, nil
}

// readVerified reads chunk i and checks it against its leaf; a mismatch
// wraps ErrModified. With a verify cache, a data chunk within one file is
// hashed only the first time: later reads check that the file's stamp
// (fstat before and after the read) is the one it was verified under.
func (h *holding) readVerified(i int, buf []byte) ([]byte, error) {
	j, s1, cached := h.stampBefore(i)
	t0 := time.Now()
	b, err := h.readRaw(i, buf)
	if err != nil {
		return nil, err
	}
	if cached {
		s2, ok := h.data.stamp(j)
		cached = ok && s2 == s1
		if cached && h.vc.known(i, j, s1) {
			return b, nil
		}
	}
	verifyHashes.Add(1)
	if HashChunk(b) != h.leaves.Hash(i) {
		return nil, fmt.Errorf("chunk %d: %w", i, ErrModified)
	}
	if cached && s1.settledBy(t0) {
		h.vc.mark(i, j, s1)
	}
	return b, nil
}

// stampBefore returns the file holding data chunk i and its stamp, or false
// if the chunk is not cacheable (no cache, parity, spans files, no stamp).
func (h *holding) stampBefore(i int) (int, fileStamp, bool) {
	if h.vc == nil {
		return 0, fileStamp{}, false
	}
	off := h.man.DataChunkOffset(i)
	if off < 0 {
		return 0, fileStamp{}, false
	}
	j, ok := h.data.fileOf(off, h.man.ChunkLen(i))
	if !ok {
		return 0, fileStamp{}, false
	}
	s, ok := h.data.stamp(j)
	return j, s, ok
}

// rebuildParity recomputes parity chunk i from the data chunks of its stripe
// (each read and verified; a mismatch wraps ErrModified), checks it against
// its leaf, writes it back to the parity file (best effort) and returns it.
// The parity file of a published item is not fsync'ed, so after a crash it
// may hold stale bytes; this is how they heal.
func (h *holding) rebuildParity(i int) ([]byte, error) {
	m := h.man
	s, _ := m.StripeOf(i)
	start, d := m.StripeStart(s), m.StripeDataCount(s)
	data := make([][]byte, d)
	for j := range data {
		b, err := h.readVerified(start+j, nil)
		if err != nil {
			return nil, err
		}
		data[j] = b
	}
	par, err := EncodeStripe(m, s, data)
	if err != nil {
		return nil, err
	}
	b := par[i-start-d]
	if HashChunk(b) != h.leaves.Hash(i) {
		return nil, fmt.Errorf("chunk %d: rebuilt parity does not match its leaf: %w", i, ErrModified)
	}
	_, _ = h.parity.WriteAt(b, m.parityOffset(i))
	return b, nil
}

func (h *holding) close() error {
	h.closeOnce.Do(func() {
		h.closeErr = h.data.Close()
		if h.parity != nil {
			h.closeErr = errors.Join(h.closeErr, h.parity.Close())
		}
	})
	return h.closeErr
}

// Item is a stored item opened for serving (seeding). Its methods are safe
// for concurrent use; Close waits for calls in flight.
// For a download still in progress, serve through the Download instead: an
// Item sees the bitmap as it was on disk when opened.
type Item struct {
	h *holding
	// have is the set of chunks held, replaced (never changed in place)
	// as RebuildParity adds parity; nil: every chunk (a published item).
	have atomic.Pointer[Bitmap]

	life      sync.RWMutex // read-held by calls using the files, write-held by Close
	closed    bool         // guarded by life
	rebuildMu sync.Mutex   // serialises RebuildParity
}

// Open opens item id for serving. It succeeds for an item whose content has
// changed; ReadChunk then refuses the chunks that changed (see Stale).
func (s *Store) Open(id ContentID) (*Item, error) {
	h, meta, err := openHolding(s, id, false)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", id, err)
	}
	h.vc = newVerifyCache(len(h.data.paths), h.man.NumChunks())
	if meta.kind == kindPublished {
		h.loadStamps()
	}
	it := &Item{h: h}
	if meta.kind == kindDownload {
		have, err := readHave(h.dir, id, h.man)
		if err != nil {
			h.close()
			return nil, fmt.Errorf("opening %s: %w", id, err)
		}
		it.have.Store(&have)
	}
	return it, nil
}

// ID returns the content ID.
func (it *Item) ID() ContentID { return it.h.id }

// Manifest returns the manifest (shared; do not modify).
func (it *Item) Manifest() *Manifest { return it.h.man }

// ManifestBytes returns the encoded manifest (shared; do not modify).
func (it *Item) ManifestBytes() []byte { return it.h.enc }

// Leaves returns the leaf layer.
func (it *Item) Leaves() *LeafLayer { return it.h.leaves }

// Have returns a copy of the set of chunks this item can serve.
func (it *Item) Have() Bitmap {
	if have := it.have.Load(); have != nil {
		return have.Clone()
	}
	b := NewBitmap(it.h.man.NumChunks())
	for i := range it.h.man.NumChunks() {
		b.Set(i)
	}
	return b
}

// HasChunk reports whether chunk i can be served now: a downloaded item
// gains the parity chunks RebuildParity adds as it records them.
func (it *Item) HasChunk(i int) bool {
	if have := it.have.Load(); have != nil {
		return have.Has(i)
	}
	return i >= 0 && i < it.h.man.NumChunks()
}

// MissingParity returns how many parity chunks a downloaded item does not
// hold yet (RebuildParity makes them); 0 for a published item.
func (it *Item) MissingParity() int {
	have := it.have.Load()
	if have == nil {
		return 0
	}
	m, n := it.h.man, 0
	for i := range m.NumChunks() {
		if m.IsParity(i) && !have.Has(i) {
			n++
		}
	}
	return n
}

// Stale reports, by file sizes only, whether the content on disk differs
// from the manifest (an error wrapping ErrModified), for a quick check
// before announcing. ReadChunk verifies each chunk regardless.
func (it *Item) Stale() error {
	if err := it.enter(); err != nil {
		return err
	}
	defer it.life.RUnlock()
	return it.h.data.checkSizes()
}

// enter admits a call that uses the item's files; the caller releases
// life's read lock when done. After Close it returns ErrClosed.
func (it *Item) enter() error {
	it.life.RLock()
	if it.closed {
		it.life.RUnlock()
		return ErrClosed
	}
	return nil
}

// ReadChunk reads chunk i (data or parity) into buf, grown if too small, and
// returns the chunk at its exact length after checking it against its leaf.
// A data chunk that no longer matches (the published file was edited) wraps
// ErrModified and must not be sent; so does a parity chunk whose stripe's
// data changed. A stored parity chunk that is damaged or stale is rebuilt
// from the stripe's data. A chunk not held wraps ErrNotHave.
func (it *Item) ReadChunk(i int, buf []byte) ([]byte, error) {
	if err := it.h.man.checkIndex(i); err != nil {
		return nil, err
	}
	if err := it.enter(); err != nil {
		return nil, err
	}
	defer it.life.RUnlock()
	if !it.HasChunk(i) {
		return nil, fmt.Errorf("chunk %d: %w", i, ErrNotHave)
	}
	b, err := it.h.readVerified(i, buf)
	if err != nil && it.h.man.IsParity(i) && it.stripeDataHeld(i) {
		var rebuilt []byte
		if rebuilt, err = it.h.rebuildParity(i); err == nil {
			b = append(buf[:0], rebuilt...)
		}
	}
	if err != nil && !errors.Is(err, ErrModified) {
		// A file cut short or removed is a modification too.
		err = fmt.Errorf("%w: %w", ErrModified, err)
	}
	return b, err
}

// stripeDataHeld reports whether every data chunk of chunk i's stripe is
// held, so its parity can be rebuilt.
func (it *Item) stripeDataHeld(i int) bool {
	have := it.have.Load()
	if have == nil {
		return true
	}
	m := it.h.man
	s, _ := m.StripeOf(i)
	start := m.StripeStart(s)
	for j := range m.StripeDataCount(s) {
		if !have.Has(start + j) {
			return false
		}
	}
	return true
}

// Close waits for calls in flight, then releases the item's files; later
// calls fail with ErrClosed. It is idempotent and may be called while other
// goroutines still read (an upload server that has just stopped serving
// the item).
func (it *Item) Close() error {
	it.life.Lock()
	defer it.life.Unlock()
	it.closed = true
	return it.h.close()
}
