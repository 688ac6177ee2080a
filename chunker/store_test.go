package chunker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// makeFolder writes a nested folder whose files span chunk boundaries.
func makeFolder(t testing.TB, root string) {
	cs := MinChunkSize
	writeFile(t, filepath.Join(root, "a.txt"), xof("a", cs/2), 0o644)
	writeFile(t, filepath.Join(root, "bin", "run.sh"), xof("run", 3*cs+5), 0o755)
	writeFile(t, filepath.Join(root, "bin", "empty"), nil, 0o600)
	writeFile(t, filepath.Join(root, "deep", "er", "x y", "z.dat"), xof("z", 5*cs+cs/3), 0o644)
	writeFile(t, filepath.Join(root, "deep", "one"), xof("one", 1), 0o700)
}

// fetchAll feeds a download every chunk of src except those skip rejects,
// from many goroutines, then finishes it.
func fetchAll(t *testing.T, src *Item, dl *Download, skip func(i int) bool) {
	t.Helper()
	m := src.Manifest()
	var wg sync.WaitGroup
	errs := make(chan error, m.NumChunks())
	for w := range 4 {
		wg.Go(func() {
			var buf []byte
			for i := w; i < m.NumChunks(); i += 4 {
				if skip(i) {
					continue
				}
				b, err := src.ReadChunk(i, buf)
				if err != nil {
					errs <- err
					return
				}
				if err := dl.WriteChunk(i, b); err != nil {
					errs <- err
					return
				}
				buf = b
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := dl.Finish(context.Background()); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if !dl.Complete() {
		t.Fatal("download not complete after Finish")
	}
}

func TestFolderRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "folder")
	makeFolder(t, src)
	stA, stB := openStore(t), openStore(t)
	p := publish(t, stA, src, PublishOptions{ChunkSize: MinChunkSize, DataShards: 3, ParityShards: 2})
	if !p.Manifest.Folder || len(p.Manifest.Files) != 5 {
		t.Fatalf("manifest: folder=%v files=%d, want a folder of 5", p.Manifest.Folder, len(p.Manifest.Files))
	}
	if f := p.Manifest.Files[2]; f.Path != "bin/run.sh" || f.Mode != ModeExec {
		t.Fatalf("file 2 = %+v, want bin/run.sh mode 0755", f)
	}
	item := openItem(t, stA, p.ID)

	// The receiver gets the manifest and leaves as bytes, as over the wire.
	m, err := DecodeManifest(item.ManifestBytes())
	if err != nil || IDOf(item.ManifestBytes()) != p.ID {
		t.Fatalf("manifest from store: %v", err)
	}
	leaves, err := DecodeLeaves(item.Leaves().Encode(), m)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	dl, err := stB.CreateDownload(m, leaves, out, DownloadOptions{SyncEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Drop the first m chunks of every stripe (data), so decoding is needed.
	fetchAll(t, item, dl, func(i int) bool { _, pos := m.StripeOf(i); return pos < m.ParityShards })
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, filepath.Join(out, "folder"))
	for _, f := range m.Files {
		fi, err := os.Stat(filepath.Join(out, "folder", f.Path))
		if err != nil || fi.Mode().Perm() != f.Mode {
			t.Fatalf("%s: mode %v (err %v), want %v", f.Path, fi.Mode().Perm(), err, f.Mode)
		}
	}

	// The finished download serves every chunk, parity included.
	got, err := stB.Open(p.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if n := got.Have().Count(); n != m.NumChunks() {
		t.Fatalf("finished download holds %d of %d chunks", n, m.NumChunks())
	}
	for i := range m.NumChunks() {
		a, err1 := item.ReadChunk(i, nil)
		b, err2 := got.ReadChunk(i, nil)
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Fatalf("chunk %d: publisher %v, downloader %v, equal %v", i, err1, err2, bytes.Equal(a, b))
		}
	}
	list, err := stB.List()
	if err != nil || len(list) != 1 || list[0].ID != p.ID || !list[0].Download || !list[0].Complete {
		t.Fatalf("List() = %+v, %v; want one complete download", list, err)
	}
}

func TestEditedFileRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	data := xof("edit", 10*MinChunkSize+7)
	writeFile(t, path, data, 0o644)
	st := openStore(t)
	p := publish(t, st, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 2})
	item := openItem(t, st, p.ID)
	if err := item.Stale(); err != nil {
		t.Fatalf("Stale before edit: %v", err)
	}
	// Flip one byte of data chunk 5 (chunk index 7: stripe 1, position 1).
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{data[5*MinChunkSize+9] ^ 1}, 5*MinChunkSize+9)
	f.Close()
	edited := p.Manifest.ChunkOfData(5)
	for i := range p.Manifest.NumChunks() {
		_, err := item.ReadChunk(i, nil)
		if i == edited && !errors.Is(err, ErrModified) {
			t.Fatalf("edited chunk %d: err %v, want ErrModified", i, err)
		}
		if i != edited && err != nil {
			t.Fatalf("untouched chunk %d: %v", i, err)
		}
	}
	// Truncation: the tail chunk fails and Stale says so.
	if err := os.Truncate(path, 3); err != nil {
		t.Fatal(err)
	}
	if err := item.Stale(); !errors.Is(err, ErrModified) {
		t.Fatalf("Stale after truncate: %v, want ErrModified", err)
	}
	if _, err := item.ReadChunk(p.Manifest.ChunkOfData(10), nil); !errors.Is(err, ErrModified) {
		t.Fatalf("chunk past the new end: %v, want ErrModified", err)
	}
}

func TestResumeAfterCrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	data := xof("resume", 9*MinChunkSize+100)
	writeFile(t, path, data, 0o644)
	stA, stB := openStore(t), openStore(t)
	p := publish(t, stA, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 1})
	item := openItem(t, stA, p.ID)
	out := t.TempDir()
	dl, err := stB.CreateDownload(p.Manifest, p.Leaves, out, DownloadOptions{SyncEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	write := func(d *Download, i int) {
		b, err := item.ReadChunk(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.WriteChunk(i, b); err != nil {
			t.Fatalf("WriteChunk(%d): %v", i, err)
		}
	}
	for _, i := range []int{0, 2, 5, 11} {
		write(dl, i)
	}
	if err := dl.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 3, 4} { // written, never synced: lost in the crash
		write(dl, i)
	}
	dl.abandon()

	dl2, err := stB.OpenDownload(p.ID, DownloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := NewBitmap(p.Manifest.NumChunks())
	for _, i := range []int{0, 2, 5, 11} {
		want.Set(i)
	}
	if got := dl2.Have(); !bytes.Equal(got, want) {
		t.Fatalf("after crash Have() = %08b, want %08b", got, want)
	}
	if dl2.Complete() {
		t.Fatal("partial download reports Complete")
	}
	// Resume: fetch what is missing.
	fetchAll(t, item, dl2, func(i int) bool { return dl2.HasChunk(i) })
	if err := dl2.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "f"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed output differs from the source (err %v)", err)
	}
	if err := dl2.WriteChunk(0, data[:MinChunkSize]); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteChunk after Close: %v, want ErrClosed", err)
	}
}

func TestWriteChunkRejectsBadData(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	data := xof("bad", 3*MinChunkSize)
	writeFile(t, path, data, 0o644)
	p := publish(t, nil, path, PublishOptions{ChunkSize: MinChunkSize})
	dl, err := openStore(t).CreateDownload(p.Manifest, p.Leaves, t.TempDir(), DownloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	bad := bytes.Clone(data[:MinChunkSize])
	bad[0] ^= 1
	for _, tc := range []struct {
		name string
		i    int
		b    []byte
		want error
	}{
		{"flipped bit", 0, bad, ErrChunkMismatch},
		{"short", 0, data[:100], ErrChunkMismatch},
		{"wrong index", 1, data[:MinChunkSize], ErrChunkMismatch},
		{"out of range", 99, data[:MinChunkSize], ErrBadIndex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := dl.WriteChunk(tc.i, tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("WriteChunk: %v, want %v", err, tc.want)
			}
			if dl.HasChunk(tc.i) {
				t.Fatalf("chunk %d marked held after bad data", tc.i)
			}
		})
	}
	if dl.StripeDecodable(0) {
		t.Fatal("empty stripe reported decodable")
	}
	if err := dl.Decode(0); !errors.Is(err, ErrNotDecodable) {
		t.Fatalf("Decode of an empty stripe: %v, want ErrNotDecodable", err)
	}
}

func TestStoreRemoveAndRepublish(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	writeFile(t, path, xof("rm", 1000), 0o644)
	st := openStore(t)
	p1 := publish(t, st, path, PublishOptions{})
	p2 := publish(t, st, path, PublishOptions{})
	if p1.ID != p2.ID {
		t.Fatal("publishing the same file twice gave two IDs")
	}
	if l, _ := st.List(); len(l) != 1 {
		t.Fatalf("List after two publishes: %d items, want 1", len(l))
	}
	if err := st.Remove(p1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Open(p1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open after Remove: %v, want ErrNotFound", err)
	}
	if err := st.Remove(p1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Remove: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Remove deleted the published file: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(st.Dir(), dirTmp))
	if len(ents) != 0 {
		t.Fatalf("%d staging folders left behind", len(ents))
	}
}

// TestConcurrentWriteAndDecode runs writers and a decoder at once (run with
// -race): every stripe gets its data either written or decoded.
func TestConcurrentWriteAndDecode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	data := xof("conc", 40*MinChunkSize+17)
	writeFile(t, path, data, 0o644)
	stA := openStore(t)
	p := publish(t, stA, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 2})
	item := openItem(t, stA, p.ID)
	m := p.Manifest
	dl, err := openStore(t).CreateDownload(m, p.Leaves, t.TempDir(), DownloadOptions{SyncEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := w; i < m.NumChunks(); i += 3 {
				if _, pos := m.StripeOf(i); pos == 1 {
					continue // never sent: must be decoded
				}
				b, err := item.ReadChunk(i, nil)
				if err == nil {
					err = dl.WriteChunk(i, b)
				}
				if err != nil {
					t.Errorf("chunk %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for !dl.Complete() {
			for s := range m.NumStripes() {
				if dl.StripeDecodable(s) {
					if err := dl.Decode(s); err != nil {
						t.Errorf("Decode(%d): %v", s, err)
						return
					}
				}
			}
		}
	})
	wg.Wait()
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(filepath.Dir(dl.h.data.paths[0]), "f"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("output differs from the source (err %v)", err)
	}
}

// TestManyFilesRoundTrip uses more files than are kept open, with chunks
// spanning many files.
func TestManyFilesRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "many")
	for i := range maxCachedFiles + 20 {
		size := (i * 797) % 5000
		if i%9 == 0 {
			size = 0
		}
		writeFile(t, filepath.Join(src, fmt.Sprintf("d%d", i%5), fmt.Sprintf("f%03d", i)), xof(fmt.Sprint("many", i), size), 0o644)
	}
	stA := openStore(t)
	p := publish(t, stA, src, PublishOptions{ChunkSize: MinChunkSize, DataShards: 3, ParityShards: 1})
	item := openItem(t, stA, p.ID)
	out := t.TempDir()
	dl, err := openStore(t).CreateDownload(p.Manifest, p.Leaves, out, DownloadOptions{SyncEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	fetchAll(t, item, dl, func(i int) bool { _, pos := p.Manifest.StripeOf(i); return pos == 0 })
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, filepath.Join(out, "many"))
}

// TestCompleteDownloadServesParity: a download that received only data
// chunks serves parity on request, rebuilt and verified.
func TestCompleteDownloadServesParity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := xof("par", 7*MinChunkSize+3)
	writeFile(t, path, data, 0o644)
	p := publish(t, nil, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 3, ParityShards: 2})
	m := p.Manifest
	chunks := splitChunks(t, m, data)
	dl, err := openStore(t).CreateDownload(m, p.Leaves, t.TempDir(), DownloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	for i := range m.NumChunks() {
		if !m.IsParity(i) {
			if err := dl.WriteChunk(i, chunks[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range m.NumChunks() {
		got, err := dl.ReadChunk(i, nil)
		if err != nil || !bytes.Equal(got, chunks[i]) {
			t.Fatalf("chunk %d (parity %v): err %v, equal %v", i, m.IsParity(i), err, bytes.Equal(got, chunks[i]))
		}
	}
}

// TestDamagedParityRebuilt: the parity file is a cache (not fsync'ed at
// publish); damaged or missing parity bytes are rebuilt from the data,
// served, and written back.
func TestDamagedParityRebuilt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := xof("heal", 9*MinChunkSize+11)
	writeFile(t, path, data, 0o644)
	st := openStore(t)
	p := publish(t, st, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 2})
	m := p.Manifest
	want := splitChunks(t, m, data)
	parityPath := filepath.Join(st.itemDir(p.ID), fileParity)
	if err := os.Truncate(parityPath, m.paritySize()/2); err != nil { // as if a crash lost the tail
		t.Fatal(err)
	}
	f, err := os.OpenFile(parityPath, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{1, 2, 3}, 5) // and garbled the head
	f.Close()
	item := openItem(t, st, p.ID)
	for pass := range 2 { // the second pass reads the healed file
		for i := range m.NumChunks() {
			got, err := item.ReadChunk(i, nil)
			if err != nil || !bytes.Equal(got, want[i]) {
				t.Fatalf("pass %d chunk %d: err %v, equal %v", pass, i, err, bytes.Equal(got, want[i]))
			}
		}
	}
	healed, _ := os.ReadFile(parityPath)
	if int64(len(healed)) != m.paritySize() {
		t.Fatalf("parity file is %d bytes after healing, want %d", len(healed), m.paritySize())
	}
	// With the data edited, the parity cannot be rebuilt and is refused.
	os.Truncate(parityPath, 0)
	os.WriteFile(path, xof("other", len(data)), 0o644)
	if _, err := item.ReadChunk(m.StripeStart(0)+4, nil); !errors.Is(err, ErrModified) {
		t.Fatalf("parity of an edited stripe: %v, want ErrModified", err)
	}
}

// TestCreateDownloadDiskFull creates a download bigger than a small tmpfs:
// it fails at once with ENOSPC and leaves nothing in the output folder.
// It needs root to mount.
func TestCreateDownloadDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	full := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", full).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", full).Run() })

	src := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(src, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	pub, err := Publish(context.Background(), nil, src, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.CreateDownload(pub.Manifest, pub.Leaves, full, DownloadOptions{})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("CreateDownload on a full disk: %v, want ENOSPC", err)
	}
	if left, _ := os.ReadDir(full); len(left) != 0 {
		t.Fatalf("the failed download left %s behind", left[0].Name())
	}
	if _, err := st.Info(pub.ID); err == nil {
		t.Fatal("the failed download was recorded in the store")
	}
}

// TestItemCloseWhileReading: Close may come while other goroutines read
// (a server that just stopped serving the item); each read returns the
// chunk or ErrClosed, never bytes of a closed file (run with -race).
func TestItemCloseWhileReading(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := xof("close", 40*MinChunkSize+3)
	writeFile(t, path, data, 0o644)
	st := openStore(t)
	p := publish(t, st, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 2})
	want := splitChunks(t, p.Manifest, data)
	item, err := st.Open(p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				i := (n*4 + g) % p.Manifest.NumChunks()
				got, err := item.ReadChunk(i, nil)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil || !bytes.Equal(got, want[i]) {
					errs <- fmt.Errorf("chunk %d: err %v, equal %v", i, err, bytes.Equal(got, want[i]))
					return
				}
			}
		}()
	}
	item.ReadChunk(0, nil) // let the readers start
	if err := item.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := item.ReadChunk(1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadChunk after Close: %v, want ErrClosed", err)
	}
}

// TestConcurrentPublishOnePath (issue 12 item 11): publishes of one path at
// once all succeed (commits of one item are serialised) and leave one good
// record.
func TestConcurrentPublishOnePath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	writeFile(t, path, xof("cp", 3*MinChunkSize+5), 0o644)
	st := openStore(t)
	const n = 50
	errs := make(chan error, n)
	ids := make(chan ContentID, n)
	for range n {
		go func() {
			p, err := Publish(context.Background(), st, path, PublishOptions{ChunkSize: MinChunkSize})
			if err == nil {
				ids <- p.ID
			}
			errs <- err
		}()
	}
	failed := 0
	for range n {
		if err := <-errs; err != nil {
			failed++
			t.Log(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d concurrent publishes of one path failed", failed, n)
	}
	id := <-ids
	it := openItem(t, st, id)
	for i := range it.Manifest().NumChunks() {
		if _, err := it.ReadChunk(i, nil); err != nil {
			t.Fatalf("the item after %d concurrent publishes: chunk %d: %v", n, i, err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(st.Dir(), dirTmp))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("%d leftovers in the store's tmp folder, want none", len(ents))
	}
}

// TestSyncWithNothingNew: a Sync with nothing stored since the last one
// (a complete download synced, then closed) rewrites no bitmap file; one
// after a new chunk does.
func TestSyncWithNothingNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := xof("quiet", 5*MinChunkSize+1)
	writeFile(t, path, data, 0o644)
	p := publish(t, nil, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 2, ParityShards: 1})
	chunks := splitChunks(t, p.Manifest, data)
	st := openStore(t)
	dl, err := st.CreateDownload(p.Manifest, p.Leaves, t.TempDir(), DownloadOptions{PageCache: true})
	if err != nil {
		t.Fatal(err)
	}
	bitmap := filepath.Join(st.itemDir(p.ID), fileHave)
	inode := func() uint64 {
		t.Helper()
		fi, err := os.Stat(bitmap)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	created := inode()
	if err := dl.Sync(); err != nil || inode() != created {
		t.Fatalf("Sync of a new download: err %v, bitmap replaced %v", err, inode() != created)
	}
	if err := dl.WriteChunk(0, chunks[0]); err != nil {
		t.Fatal(err)
	}
	if err := dl.Sync(); err != nil || inode() == created {
		t.Fatalf("Sync after a chunk: err %v, bitmap replaced %v", err, inode() != created)
	}
	synced := inode()
	if err := dl.Close(); err != nil || inode() != synced {
		t.Fatalf("Close after a Sync: err %v, bitmap replaced %v", err, inode() != synced)
	}
	again, err := st.OpenDownload(p.ID, DownloadOptions{PageCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if !again.HasChunk(0) || again.Have().Count() != 1 {
		t.Fatalf("reopened download holds %d chunks, want chunk 0", again.Have().Count())
	}
}
