package chunker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// DownloadOptions tunes a Download. The zero value means defaults.
type DownloadOptions struct {
	// SyncEvery is the number of newly held chunks after which the
	// download's background syncer flushes data and then the bitmap to disk.
	// Default: as many chunks as make 64 MiB (256 at 256 KiB), at least 16.
	// Chunks held since the last completed sync are fetched again after a
	// crash.
	SyncEvery int
	// Sparse creates the output and parity files sparse instead of
	// reserving their blocks: only the chunks written take disk space (a
	// cache that fetches part of an item), at the cost of a full disk
	// showing up while chunks are written rather than at creation.
	Sparse bool
	// PageCache makes the download read and write its output through the
	// page cache. By default (on Linux, where the file system supports
	// it) whole aligned chunks bypass it with direct I/O: each byte is
	// copied once less, the download does not fill memory with pages
	// nobody reads again, and the data reaches the disk as it arrives.
	// Chunks served to peers are then read back from the disk.
	PageCache bool
}

const defaultSyncBytes = 64 << 20

// Download writes a verified item into an output folder and records which
// chunks it holds, so it resumes after a crash.
//
// Concurrency: WriteChunk, ReadChunk, Decode, Have, HasChunk, Complete,
// StripeDecodable and Sync may be called from many goroutines at once.
// Close waits for calls in flight and makes later ones fail with ErrClosed.
//
// Durability: a chunk counts as held in memory (Have, ReadChunk) as soon as
// WriteChunk returns. On disk, a sync first fsyncs the output files and the
// parity file, then atomically replaces the bitmap file, so the bitmap never
// claims data that was not flushed. Syncs run on the download's own
// goroutine every SyncEvery chunks (WriteChunk never waits for the disk),
// and on Sync and Close. After a crash, OpenDownload reports exactly the
// chunks of the last completed sync.
type Download struct {
	h         *holding
	syncEvery int

	// background syncer: owned by the Download, stopped by Close.
	kick     chan struct{} // capacity 1; a full channel means a sync is pending
	stop     chan struct{}
	syncDone chan struct{}
	bgErr    error // last background sync error, guarded by mu

	life sync.RWMutex // read-held by every call in flight; write-held by Close
	// guarded by mu:
	mu       sync.Mutex
	have     Bitmap
	wrote    Bitmap // chunks this Download verified and wrote itself
	unsynced int
	dirty    bool // chunks stored since the last sync took its snapshot
	closed   bool

	syncMu  sync.Mutex // serialises Sync
	rebuilt bool       // OpenDownload rebuilt a damaged bitmap; read-only
}

// rebuildHave re-verifies every chunk of the output and parity file against
// its leaf and writes a new bitmap of the ones that match. It reads the
// whole item once.
func rebuildHave(h *holding) (Bitmap, error) {
	n := h.man.NumChunks()
	have := NewBitmap(n)
	var buf []byte
	for i := range n {
		b, err := h.readRaw(i, buf)
		if err != nil {
			return nil, fmt.Errorf("rebuilding bitmap: %w", err)
		}
		buf = b
		if HashChunk(b) == h.leaves.Hash(i) {
			have.Set(i)
		}
	}
	if err := writeFileAtomic(filepath.Join(h.dir, fileHave), encodeBitmapFile(h.id, n, have)); err != nil {
		return nil, fmt.Errorf("rebuilding bitmap: %w", err)
	}
	return have, nil
}

// Rebuilt reports whether OpenDownload found the bitmap file damaged and
// rebuilt it by re-verifying the output against the leaf layer (every
// chunk that matched is kept; Have tells which).
func (d *Download) Rebuilt() bool { return d.rebuilt }

// CreateDownload starts a download of m into outDir (created if missing):
// the content goes to outDir/<m.Name> (a file, or a folder with the manifest's files), created
// at full size with their modes. It fails if that path or an item with the
// same ID already exists (resume with OpenDownload). leaves must be m's leaf
// layer (DecodeLeaves checks that).
func (s *Store) CreateDownload(m *Manifest, leaves *LeafLayer, outDir string, opts DownloadOptions) (*Download, error) {
	enc, err := m.Encode()
	if err != nil {
		return nil, fmt.Errorf("creating download: %w", err)
	}
	id := IDOf(enc)
	if leaves.Len() != m.NumChunks() || leaves.Root() != m.Root {
		return nil, fmt.Errorf("creating download %s: leaves: %w", id, ErrRootMismatch)
	}
	if _, err := os.Stat(s.itemDir(id)); err == nil {
		return nil, fmt.Errorf("creating download %s: already in the store: %w", id, fs.ErrExist)
	}
	absOut, err := filepath.Abs(outDir)
	if err != nil {
		return nil, fmt.Errorf("creating download %s: %w", id, err)
	}
	root := filepath.Join(absOut, m.Name)
	if err := os.MkdirAll(absOut, 0o755); err != nil {
		return nil, fmt.Errorf("creating download %s: %w", id, err)
	}
	if err := createOutput(m, root, opts.Sparse); err != nil {
		return nil, fmt.Errorf("creating download %s: %w", id, err)
	}
	created := false
	defer func() {
		if !created {
			os.RemoveAll(root) // ours: createOutput made it; a retry needs the path free
		}
	}()
	stage, err := s.stageDir()
	if err != nil {
		return nil, fmt.Errorf("creating download %s: %w", id, err)
	}
	defer os.RemoveAll(stage)
	setSize := preallocate
	if opts.Sparse {
		setSize = truncate
	}
	pf, err := createSizedWith(filepath.Join(stage, fileParity), m.paritySize(), setSize)
	if err == nil {
		err = errors.Join(pf.Sync(), pf.Close())
	}
	if err == nil {
		err = writeStaged(filepath.Join(stage, fileHave), encodeBitmapFile(id, m.NumChunks(), NewBitmap(m.NumChunks())))
	}
	if err == nil {
		err = s.commit(stage, &Published{ID: id, Manifest: m, Encoded: enc, Leaves: leaves}, itemMeta{kind: kindDownload, root: root})
	}
	if err != nil {
		return nil, fmt.Errorf("creating download %s: %w", id, err)
	}
	created = true
	return s.OpenDownload(id, opts)
}

// createOutput creates the output file or folder at full (sparse or
// preallocated) size. On failure it removes what it created, so that a full
// disk leaves nothing behind.
func createOutput(m *Manifest, root string, sparse bool) error {
	if _, err := os.Lstat(root); err == nil {
		return fmt.Errorf("output %s: %w", root, fs.ErrExist)
	}
	setSize := preallocate
	if sparse {
		setSize = truncate
	}
	err := createOutputAt(m, root, setSize)
	if err != nil {
		os.RemoveAll(root) // ours: it did not exist a moment ago
	}
	return err
}

func createOutputAt(m *Manifest, root string, setSize func(*os.File, int64) error) error {
	mk := func(path string, n int64, mode fs.FileMode) error {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		err = setSize(f, n)
		if err == nil {
			err = f.Chmod(mode) // undo the umask: the manifest says which mode
		}
		return errors.Join(err, f.Close())
	}
	if !m.Folder {
		return mk(root, m.Size, ModeFile)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	for _, f := range m.Files {
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := mk(p, f.Size, f.Mode); err != nil {
			return err
		}
	}
	return nil
}

// OpenDownload reopens a download recorded in the store, for resuming or for
// serving it. Have reports the chunks recorded by its last Sync; if the
// bitmap file is damaged, the chunks on disk that match their leaves
// (see Rebuilt).
func (s *Store) OpenDownload(id ContentID, opts DownloadOptions) (*Download, error) {
	h, meta, err := openHolding(s, id, true)
	if err != nil {
		return nil, fmt.Errorf("opening download %s: %w", id, err)
	}
	if meta.kind != kindDownload {
		h.close()
		return nil, fmt.Errorf("opening download %s: item was published, not downloaded: %w", id, ErrBadState)
	}
	err = h.data.checkSizes()
	var have Bitmap
	if err == nil {
		have, err = readHave(h.dir, id, h.man)
	}
	rebuilt := false
	if errors.Is(err, ErrBadState) {
		// A damaged bitmap is not a dead end: the chunks on disk that
		// match their leaves are the verified ones.
		have, err = rebuildHave(h)
		rebuilt = err == nil
	}
	if err != nil {
		h.close()
		return nil, fmt.Errorf("opening download %s: %w", id, err)
	}
	if !opts.PageCache {
		h.data.useDirect()
	}
	d := &Download{h: h, have: have, wrote: NewBitmap(h.man.NumChunks()), syncEvery: opts.SyncEvery, rebuilt: rebuilt,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), syncDone: make(chan struct{})}
	if d.syncEvery <= 0 {
		d.syncEvery = max(16, defaultSyncBytes/h.man.ChunkSize)
	}
	go d.syncLoop()
	return d, nil
}

// syncLoop runs a sync whenever WriteChunk kicks it, until Close.
func (d *Download) syncLoop() {
	defer close(d.syncDone)
	for {
		select {
		case <-d.stop:
			return
		case <-d.kick:
			if err := d.sync(); err != nil {
				d.mu.Lock()
				d.bgErr = err
				d.mu.Unlock()
			}
		}
	}
}

// ID returns the content ID.
func (d *Download) ID() ContentID { return d.h.id }

// Manifest returns the manifest (shared; do not modify).
func (d *Download) Manifest() *Manifest { return d.h.man }

// ManifestBytes returns the encoded manifest (shared; do not modify).
func (d *Download) ManifestBytes() []byte { return d.h.enc }

// Leaves returns the leaf layer.
func (d *Download) Leaves() *LeafLayer { return d.h.leaves }

// Have returns a copy of the set of verified chunks held.
func (d *Download) Have() Bitmap {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.have.Clone()
}

// HasChunk reports whether chunk i is held.
func (d *Download) HasChunk(i int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.have.Has(i)
}

// Complete reports whether every data chunk is held: the output is whole.
func (d *Download) Complete() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return dataComplete(d.h.man, d.have)
}

func (d *Download) enter() error {
	d.life.RLock()
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		d.life.RUnlock()
		return ErrClosed
	}
	return nil
}

func (d *Download) leave() { d.life.RUnlock() }

// WriteChunk verifies chunk i against its leaf and stores it: a data chunk at
// its offset in the output, a parity chunk in the parity file. data must be
// the chunk at its exact length; it is not retained. Bytes that do not match
// wrap ErrChunkMismatch (the sender sent bad data); writing a chunk already
// held is a no-op.
func (d *Download) WriteChunk(i int, data []byte) error {
	m := d.h.man
	if err := m.checkIndex(i); err != nil {
		return err
	}
	if n := m.ChunkLen(i); len(data) != n {
		return fmt.Errorf("chunk %d: %d bytes, want %d: %w", i, len(data), n, ErrChunkMismatch)
	}
	if err := d.h.leaves.Verify(i, data); err != nil {
		return err
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	if d.HasChunk(i) {
		return nil
	}
	return d.store(i, data)
}

// store writes a verified chunk and marks it held; the caller holds life.
func (d *Download) store(i int, data []byte) error {
	var err error
	if off := d.h.man.DataChunkOffset(i); off >= 0 {
		err = d.h.data.WriteAt(data, off)
	} else {
		_, err = d.h.parity.WriteAt(data, d.h.man.parityOffset(i))
	}
	if err != nil {
		return fmt.Errorf("writing chunk %d: %w", i, err)
	}
	d.mu.Lock()
	if !d.have.Has(i) {
		d.have.Set(i)
		d.unsynced++
	}
	d.wrote.Set(i)
	d.dirty = true
	flush := d.unsynced >= d.syncEvery
	d.mu.Unlock()
	if flush {
		select {
		case d.kick <- struct{}{}:
		default: // a sync is already pending; it will include this chunk
		}
	}
	return nil
}

// ReadChunk serves chunk i like Item.ReadChunk: verified against its leaf
// (ErrModified if the bytes on disk changed), except a chunk this Download
// verified and wrote itself: the output sits in the node's 0700 partial
// folder, opened without following links, and only this process writes it,
// so hashing it again for every peer it is served to (a leecher in a swarm
// of 8 spent 8 % of its CPU there) would guard only against the disk
// changing bytes under us within the download. Chunks found at resume are
// verified when read. A chunk not held but
// rebuildable (its stripe is decodable) is decoded first, so a complete
// download serves every parity chunk; otherwise it wraps ErrNotHave.
func (d *Download) ReadChunk(i int, buf []byte) ([]byte, error) {
	if err := d.h.man.checkIndex(i); err != nil {
		return nil, err
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.leave()
	if !d.HasChunk(i) {
		s, _ := d.h.man.StripeOf(i)
		if !d.StripeDecodable(s) {
			return nil, fmt.Errorf("chunk %d: %w", i, ErrNotHave)
		}
		if err := d.decode(s); err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	d.mu.Lock()
	mine := d.wrote.Has(i)
	d.mu.Unlock()
	if mine {
		return d.h.readRaw(i, buf)
	}
	return d.h.readVerified(i, buf)
}

// StripeDecodable reports whether stripe s has at least d_s held chunks, so
// Decode can rebuild the rest.
func (d *Download) StripeDecodable(s int) bool {
	m := d.h.man
	if s < 0 || s >= m.NumStripes() {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n, start := 0, m.StripeStart(s)
	for pos := range m.StripeLen(s) {
		if d.have.Has(start + pos) {
			n++
		}
	}
	return n >= m.StripeDataCount(s)
}

// Decode rebuilds every missing chunk (data and parity) of stripe s from d_s
// held ones, checks each against its leaf and stores it. It wraps
// ErrNotDecodable when too few chunks are held, and ErrModified if the
// rebuilt bytes do not match (held chunks changed on disk).
func (d *Download) Decode(s int) error {
	m := d.h.man
	if err := m.checkStripe(s); err != nil {
		return err
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	return d.decode(s)
}

// decode is Decode for a caller that holds life.
func (d *Download) decode(s int) error {
	m := d.h.man
	have := d.Have()
	start, dc := m.StripeStart(s), m.StripeDataCount(s)
	chunks := make([][]byte, m.StripeLen(s))
	read, missing := 0, 0
	for pos := range chunks {
		if !have.Has(start + pos) {
			missing++
			continue
		}
		if read == dc {
			continue // enough to decode; rebuilt below, but not rewritten
		}
		b, err := d.h.readRaw(start+pos, nil)
		if err != nil {
			return fmt.Errorf("decoding stripe %d: %w", s, err)
		}
		chunks[pos] = b
		read++
	}
	if missing == 0 {
		return nil
	}
	if read < dc {
		return fmt.Errorf("decoding stripe %d: %d of %d chunks held, need %d: %w", s, read, len(chunks), dc, ErrNotDecodable)
	}
	if err := DecodeStripe(m, s, chunks); err != nil {
		return fmt.Errorf("decoding stripe %d: %w", s, err)
	}
	for pos, b := range chunks {
		i := start + pos
		if have.Has(i) {
			continue
		}
		if HashChunk(b) != d.h.leaves.Hash(i) {
			return fmt.Errorf("decoding stripe %d: rebuilt chunk %d does not match its leaf: %w", s, i, ErrModified)
		}
		if err := d.store(i, b); err != nil {
			return fmt.Errorf("decoding stripe %d: %w", s, err)
		}
	}
	return nil
}

// Finish decodes every stripe that misses chunks, so the download holds
// every data and parity chunk and can serve them all, then syncs. It wraps
// ErrNotDecodable if some stripe has too few chunks.
func (d *Download) Finish(ctx context.Context) error {
	have := d.Have()
	m := d.h.man
	for s := range m.NumStripes() {
		if err := ctx.Err(); err != nil {
			return err
		}
		start, full := m.StripeStart(s), true
		for pos := range m.StripeLen(s) {
			if !have.Has(start + pos) {
				full = false
				break
			}
		}
		if !full {
			if err := d.Decode(s); err != nil {
				return err
			}
		}
	}
	return d.Sync()
}

// Sync flushes the output and parity files, then records the held chunks in
// the bitmap file. It also reports a failed background sync.
func (d *Download) Sync() error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	return errors.Join(d.takeBgErr(), d.sync())
}

func (d *Download) takeBgErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.bgErr
	d.bgErr = nil
	return err
}

// sync flushes what was stored since the last sync and records it. With
// nothing stored since (the files and the bitmap on disk already say what
// the Download holds: a download that synced when complete, then closes),
// it touches no file: each fsync may wait behind other work on the disk.
func (d *Download) sync() (err error) {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	d.mu.Lock()
	if !d.dirty {
		d.mu.Unlock()
		return nil
	}
	snap := d.have.Clone()
	d.unsynced = 0
	d.dirty = false
	d.mu.Unlock()
	defer func() {
		if err != nil { // the next sync tries again
			d.mu.Lock()
			d.dirty = true
			d.mu.Unlock()
		}
	}()
	if err := d.h.data.Sync(); err != nil {
		return err
	}
	if d.h.parity != nil {
		if err := d.h.parity.Sync(); err != nil {
			return fmt.Errorf("syncing parity: %w", err)
		}
	}
	if err := writeFileAtomic(filepath.Join(d.h.dir, fileHave), encodeBitmapFile(d.h.id, d.h.man.NumChunks(), snap)); err != nil {
		return fmt.Errorf("writing bitmap: %w", err)
	}
	return nil
}

// Close waits for calls in flight, stops the syncer, syncs and closes the
// files. It is idempotent.
func (d *Download) Close() error {
	if !d.shut() {
		return nil
	}
	defer d.life.Unlock()
	return errors.Join(d.takeBgErr(), d.sync(), d.h.close())
}

// shut marks the download closed, waits for calls in flight and stops the
// syncer. It returns with life held, or false if already closed.
func (d *Download) shut() bool {
	d.life.Lock()
	d.mu.Lock()
	was := d.closed
	d.closed = true
	d.mu.Unlock()
	if was {
		d.life.Unlock()
		return false
	}
	close(d.stop)
	<-d.syncDone
	return true
}

// abandon closes the files without syncing, as a crash would (tests).
func (d *Download) abandon() {
	if d.shut() {
		d.h.close()
		d.life.Unlock()
	}
}
