package chunker

import (
	"context"
	"fmt"
	"path/filepath"
)

// rebuildSyncBytes is how many bytes of parity RebuildParity writes between
// two records in the bitmap file: what a crash can cost it.
var rebuildSyncBytes = defaultSyncBytes

// testHookRebuild, set by tests, runs after each record RebuildParity makes
// (the parity file synced, the bitmap file replaced and the chunks added
// to Have); an error stops the rebuild there, as a crash would.
var testHookRebuild = func(recorded int) error { return nil }

// RebuildParity encodes the parity chunks a downloaded item does not hold
// (a download that fetched only the chunks it needed, then installed its
// output) from its data chunks, checks each against its leaf and writes it
// to the parity file. Every rebuildSyncBytes of parity, and at the end, it
// syncs the parity file, then replaces the bitmap file, then adds the
// chunks to Have and calls added with them (outside the item's locks): a
// chunk is served, or recorded on disk, only once it is on disk, so after
// a crash Store.Open reports the chunks of the last record and a new
// RebuildParity makes the rest. It returns nil at once when nothing is
// missing (a published item holds all its parity); ctx's error when ctx
// ends (the chunks written since the last record are written again next
// time); ErrClosed after Close; an error wrapping ErrModified when a
// rebuilt chunk does not match its leaf (the output changed on disk since
// it was verified: the item keeps serving what still matches).
//
// Data chunks are read without being hashed: a parity chunk depends on
// every data chunk of its stripe, so rebuilt parity matches its leaf only
// if the data it came from is the verified data. Calls are serialised;
// ReadChunk and Close may run meanwhile (Close waits for at most one
// stripe or one record).
func (it *Item) RebuildParity(ctx context.Context, added func(chunks []int)) error {
	it.rebuildMu.Lock()
	defer it.rebuildMu.Unlock()
	m := it.h.man
	have := it.have.Load()
	if have == nil || it.MissingParity() == 0 {
		return nil
	}
	if !dataComplete(m, *have) {
		return fmt.Errorf("rebuilding parity of %s: data chunks missing: %w", it.h.id, ErrNotDecodable)
	}
	var (
		written []int // rebuilt since the last record
		bytes   int
		data    = make([][]byte, m.DataShards)
	)
	record := func() error {
		if len(written) == 0 {
			return nil
		}
		if err := it.record(written); err != nil {
			return err
		}
		if err := testHookRebuild(len(written)); err != nil {
			return err
		}
		if added != nil {
			added(written)
		}
		written, bytes = nil, 0
		return nil
	}
	for s := range m.NumStripes() {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := it.rebuildStripe(s, data)
		if err != nil {
			return fmt.Errorf("rebuilding parity of %s: %w", it.h.id, err)
		}
		for _, i := range n {
			written = append(written, i)
			bytes += m.ChunkLen(i)
		}
		if bytes >= rebuildSyncBytes {
			if err := record(); err != nil {
				return err
			}
		}
	}
	return record()
}

// rebuildStripe writes the parity chunks of stripe s not held and returns
// their indexes; data is a scratch slice of DataShards buffers.
func (it *Item) rebuildStripe(s int, data [][]byte) ([]int, error) {
	if err := it.enter(); err != nil {
		return nil, err
	}
	defer it.life.RUnlock()
	m, have := it.h.man, it.have.Load()
	start, dc := m.StripeStart(s), m.StripeDataCount(s)
	var missing []int
	for i := start + dc; i < start+m.StripeLen(s); i++ {
		if !have.Has(i) {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	for j := range dc {
		b, err := it.h.readRaw(start+j, data[j])
		if err != nil {
			return nil, err
		}
		data[j] = b
	}
	par, err := EncodeStripe(m, s, data[:dc])
	if err != nil {
		return nil, err
	}
	for _, i := range missing {
		b := par[i-start-dc]
		if HashChunk(b) != it.h.leaves.Hash(i) {
			return nil, fmt.Errorf("stripe %d: rebuilt parity chunk %d does not match its leaf (the output changed on disk): %w", s, i, ErrModified)
		}
		if _, err := it.h.parity.WriteAt(b, m.parityOffset(i)); err != nil {
			return nil, fmt.Errorf("writing chunk %d: %w", i, err)
		}
	}
	return missing, nil
}

// record syncs the parity file, then replaces the bitmap file with the held
// chunks plus chunks, then adds chunks to Have.
func (it *Item) record(chunks []int) error {
	if err := it.enter(); err != nil {
		return err
	}
	defer it.life.RUnlock()
	if err := it.h.parity.Sync(); err != nil {
		return fmt.Errorf("syncing parity: %w", err)
	}
	have := it.have.Load().Clone()
	for _, i := range chunks {
		have.Set(i)
	}
	if err := writeFileAtomic(filepath.Join(it.h.dir, fileHave), encodeBitmapFile(it.h.id, it.h.man.NumChunks(), have)); err != nil {
		return fmt.Errorf("writing bitmap: %w", err)
	}
	it.have.Store(&have)
	return nil
}
