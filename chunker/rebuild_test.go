package chunker

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// installedDownload makes what a node holds right after installing a
// download that fetched every data chunk and the parity chunks keep says:
// the output moved out of its download folder to its final path, the
// store's bitmap recording what was fetched. It returns the store, the
// published item (for its manifest), every chunk, and the final path.
func installedDownload(t testing.TB, keep func(i int) bool) (*Store, *Published, [][]byte, string) {
	return installedDownloadOf(t, 23*MinChunkSize+5, PublishOptions{ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 2}, keep)
}

func installedDownloadOf(t testing.TB, size int, opts PublishOptions, keep func(i int) bool) (*Store, *Published, [][]byte, string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "f")
	data := xof("rebuild", size)
	writeFile(t, src, data, 0o644)
	p := publish(t, nil, src, opts)
	m := p.Manifest
	chunks := splitChunks(t, m, data)
	st := openStore(t)
	dlDir := t.TempDir()
	dl, err := st.CreateDownload(m, p.Leaves, dlDir, DownloadOptions{PageCache: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.NumChunks() {
		if !m.IsParity(i) || keep(i) {
			if err := dl.WriteChunk(i, chunks[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(t.TempDir(), "f")
	if err := os.Rename(filepath.Join(dlDir, "f"), final); err != nil {
		t.Fatal(err)
	}
	if err := st.MoveOutput(p.ID, final); err != nil {
		t.Fatal(err)
	}
	return st, p, chunks, final
}

// checkServes fails unless item serves exactly the chunks in have, each
// equal to want, and refuses the others with ErrNotHave.
func checkServes(t *testing.T, item *Item, want [][]byte, have func(i int) bool) {
	t.Helper()
	for i := range want {
		got, err := item.ReadChunk(i, nil)
		switch {
		case have(i) && (err != nil || !bytes.Equal(got, want[i])):
			t.Fatalf("chunk %d: err %v, equal %v; want it served", i, err, bytes.Equal(got, want[i]))
		case !have(i) && !errors.Is(err, ErrNotHave):
			t.Fatalf("chunk %d (not held): err %v, want ErrNotHave", i, err)
		}
		if item.HasChunk(i) != have(i) {
			t.Fatalf("HasChunk(%d) = %v, want %v", i, item.HasChunk(i), have(i))
		}
	}
}

// TestItemRebuildParity: an installed download that fetched one parity
// chunk serves its data and that chunk, not the parity it lacks; after
// RebuildParity it serves every chunk, added named exactly the chunks made,
// and the store records them (a reopened item serves them too).
func TestItemRebuildParity(t *testing.T) {
	old := rebuildSyncBytes
	rebuildSyncBytes = 3 * MinChunkSize // several records
	defer func() { rebuildSyncBytes = old }()
	fetched := 4 // stripe 0's first parity chunk
	st, p, chunks, _ := installedDownload(t, func(i int) bool { return i == fetched })
	m := p.Manifest
	item := openItem(t, st, p.ID)
	var wantMade []int
	for i := range m.NumChunks() {
		if m.IsParity(i) && i != fetched {
			wantMade = append(wantMade, i)
		}
	}
	if got := item.MissingParity(); got != len(wantMade) {
		t.Fatalf("MissingParity = %d, want %d", got, len(wantMade))
	}
	checkServes(t, item, chunks, func(i int) bool { return !m.IsParity(i) || i == fetched })

	var made []int
	records := 0
	if err := item.RebuildParity(context.Background(), func(c []int) { made = append(made, c...); records++ }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(made, wantMade) || records < 2 {
		t.Fatalf("added %v in %d records, want %v in several", made, records, wantMade)
	}
	if item.MissingParity() != 0 {
		t.Fatalf("MissingParity = %d after the rebuild", item.MissingParity())
	}
	checkServes(t, item, chunks, func(int) bool { return true })
	again := openItem(t, st, p.ID)
	checkServes(t, again, chunks, func(int) bool { return true })
	if err := again.RebuildParity(context.Background(), func([]int) { t.Fatal("a complete item rebuilt parity") }); err != nil {
		t.Fatal(err)
	}
}

// TestItemRebuildParityCrash: a rebuild stopped after its first record (as
// a crash there would leave it, with unrecorded parity bytes garbled on
// disk) leaves a store whose reopened item serves the recorded parity and
// refuses the rest; a new RebuildParity makes the rest.
func TestItemRebuildParityCrash(t *testing.T) {
	oldBytes, oldHook := rebuildSyncBytes, testHookRebuild
	rebuildSyncBytes = 4 * MinChunkSize
	defer func() { rebuildSyncBytes, testHookRebuild = oldBytes, oldHook }()
	st, p, chunks, _ := installedDownload(t, func(int) bool { return false })
	m := p.Manifest
	crash := errors.New("simulated crash")
	testHookRebuild = func(int) error { return crash }
	item, err := st.Open(p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var recorded []int
	if err := item.RebuildParity(context.Background(), func(c []int) { recorded = append(recorded, c...) }); !errors.Is(err, crash) {
		t.Fatalf("RebuildParity through a crash: %v", err)
	}
	item.Close()
	testHookRebuild = oldHook
	if len(recorded) != 0 {
		t.Fatalf("added called for %v before the crash point", recorded)
	}
	// The crash came after the record: those chunks are on disk.
	have, err := readHave(st.itemDir(p.ID), p.ID, m)
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for i := range m.NumChunks() {
		if m.IsParity(i) && have.Has(i) {
			held++
		}
	}
	if held == 0 || held == m.NumStripes()*m.ParityShards {
		t.Fatalf("%d parity chunks recorded, want some but not all", held)
	}
	// Garble every unrecorded parity chunk, as a crash mid-write could.
	f, err := os.OpenFile(filepath.Join(st.itemDir(p.ID), fileParity), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.NumChunks() {
		if m.IsParity(i) && !have.Has(i) {
			f.WriteAt(bytes.Repeat([]byte{0xa5}, m.ChunkLen(i)), m.parityOffset(i))
		}
	}
	f.Close()
	restarted := openItem(t, st, p.ID)
	checkServes(t, restarted, chunks, have.Has)
	if err := restarted.RebuildParity(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	checkServes(t, restarted, chunks, func(int) bool { return true })
}

// TestItemRebuildParityModified: an output edited after install yields
// parity that does not match its leaves: RebuildParity fails with
// ErrModified and records nothing; a cancelled context stops it.
func TestItemRebuildParityModified(t *testing.T) {
	st, p, _, final := installedDownload(t, func(int) bool { return false })
	m := p.Manifest
	item := openItem(t, st, p.ID)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := item.RebuildParity(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled RebuildParity: %v", err)
	}
	f, err := os.OpenFile(final, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("edited"), 100)
	f.Close()
	if err := item.RebuildParity(context.Background(), func(c []int) { t.Fatalf("added %v from edited data", c) }); !errors.Is(err, ErrModified) {
		t.Fatalf("RebuildParity over edited data: %v, want ErrModified", err)
	}
	if item.MissingParity() != m.NumStripes()*m.ParityShards {
		t.Fatalf("MissingParity = %d after a failed rebuild", item.MissingParity())
	}
}

// BenchmarkItemRebuildParity rebuilds the parity of a 64 MiB installed
// download that fetched none (the default 16+4 layout: 16 MiB of parity),
// its output in the page cache. The figure is content bytes per second.
func BenchmarkItemRebuildParity(b *testing.B) {
	st, p, _, _ := installedDownloadOf(b, 64<<20, PublishOptions{}, func(int) bool { return false })
	m := p.Manifest
	dataOnly := NewBitmap(m.NumChunks())
	for i := range m.NumChunks() {
		if !m.IsParity(i) {
			dataOnly.Set(i)
		}
	}
	b.SetBytes(m.Size)
	for b.Loop() {
		b.StopTimer()
		if err := writeFileAtomic(filepath.Join(st.itemDir(p.ID), fileHave), encodeBitmapFile(p.ID, m.NumChunks(), dataOnly)); err != nil {
			b.Fatal(err)
		}
		item, err := st.Open(p.ID)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := item.RebuildParity(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		item.Close()
		b.StartTimer()
	}
}
