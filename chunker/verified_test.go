package chunker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/testwait"
)

// readAll reads every chunk of item and returns how many were hashed.
func readAll(t *testing.T, item *Item, want func(i int) error) int64 {
	t.Helper()
	before := verifyHashes.Load()
	for i := range item.Manifest().NumChunks() {
		_, err := item.ReadChunk(i, nil)
		if w := want(i); (w == nil) != (err == nil) || (w != nil && !errors.Is(err, w)) {
			t.Fatalf("chunk %d: err %v, want %v", i, err, w)
		}
	}
	return verifyHashes.Load() - before
}

// TestVerifyCache checks that a published file's data chunks are hashed
// once while the file is unchanged, and that an edit which keeps the size
// is still refused after the chunks were cached.
func TestVerifyCache(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the verify cache needs ctime (linux only)")
	}
	old := settleMargin
	settleMargin = 0
	t.Cleanup(func() { settleMargin = old })

	tests := []struct {
		name string
		edit func(t *testing.T, path string, data []byte)
	}{
		{"write in place", flipInPlace},
		{"write in place, mtime restored", func(t *testing.T, path string, data []byte) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			flipInPlace(t, path, data)
			if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			data := xof("cache", 10*MinChunkSize+7)
			writeFile(t, path, data, 0o644)
			st := openStore(t)
			p := publish(t, st, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 2})
			item := openItem(t, st, p.ID)
			m := p.Manifest
			nParity := int64(m.NumChunks() - m.NumDataChunks())
			ok := func(int) error { return nil }
			if n := readAll(t, item, ok); n != nParity {
				t.Fatalf("first pass hashed %d chunks, want only the %d parity chunks (publish's stamps trusted)", n, nParity)
			}
			if n := readAll(t, item, ok); n != nParity {
				t.Fatalf("second pass hashed %d chunks, want only the %d parity chunks", n, nParity)
			}
			waitClockTick(t, path)
			tc.edit(t, path, data)
			edited := m.ChunkOfData(5)
			refused := func(i int) error {
				if i == edited {
					return ErrModified
				}
				return nil
			}
			if n := readAll(t, item, refused); n != int64(m.NumChunks()) {
				t.Fatalf("pass after the edit hashed %d chunks, want all %d", n, m.NumChunks())
			}
			// A fresh Open must not trust publish's stamps either.
			again, err := st.Open(p.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if n := readAll(t, again, refused); n != int64(m.NumChunks()) {
				t.Fatalf("reopened after the edit: hashed %d chunks, want all %d", n, m.NumChunks())
			}
		})
	}
}

// TestVerifyCacheRecentFile checks that chunks of a file changed within the
// settle margin are hashed on every read.
func TestVerifyCacheRecentFile(t *testing.T) {
	old := settleMargin
	settleMargin = time.Hour
	t.Cleanup(func() { settleMargin = old })
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	writeFile(t, path, xof("recent", 3*MinChunkSize), 0o644)
	st := openStore(t)
	p := publish(t, st, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 2})
	item := openItem(t, st, p.ID)
	ok := func(int) error { return nil }
	if n := readAll(t, item, ok); n != int64(p.Manifest.NumChunks()) {
		t.Fatalf("first pass hashed %d chunks, want all %d (file too recent to trust)", n, p.Manifest.NumChunks())
	}
	if n := readAll(t, item, ok); n != int64(p.Manifest.NumChunks()) {
		t.Fatalf("second pass hashed %d chunks, want all %d (file too recent to cache)", n, p.Manifest.NumChunks())
	}
}

func TestStampsRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		es    []stampEntry
		files int
	}{
		{"empty", nil, 1},
		{"one", []stampEntry{{0, fileStamp{dev: 1, ino: 2, size: 3, mtime: -4, ctime: 5}}}, 1},
		{"two of three", []stampEntry{{0, fileStamp{ino: 9}}, {2, fileStamp{size: 1 << 40}}}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeStamps(encodeStamps(tc.es), tc.files)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.es) {
				t.Fatalf("decoded %d entries, want %d", len(got), len(tc.es))
			}
			for k := range got {
				if got[k] != tc.es[k] {
					t.Fatalf("entry %d: got %+v, want %+v", k, got[k], tc.es[k])
				}
			}
		})
	}
	bad := []struct {
		name  string
		b     []byte
		files int
	}{
		{"short", []byte("SHS"), 1},
		{"file index out of range", encodeStamps([]stampEntry{{3, fileStamp{}}}), 2},
		{"more entries than files", encodeStamps([]stampEntry{{0, fileStamp{}}, {0, fileStamp{}}}), 1},
		{"truncated", encodeStamps([]stampEntry{{0, fileStamp{}}})[:20], 1},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeStamps(tc.b, tc.files); !errors.Is(err, ErrBadState) {
				t.Fatalf("err %v, want ErrBadState", err)
			}
		})
	}
}

func FuzzDecodeStamps(f *testing.F) {
	f.Add(encodeStamps([]stampEntry{{0, fileStamp{dev: 1, ino: 2, size: 3, mtime: 4, ctime: 5}}}), uint8(1))
	f.Add(encodeStamps([]stampEntry{{1, fileStamp{ino: 7}}}), uint8(2))
	f.Add([]byte("SHST\x01"), uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, files uint8) {
		es, err := decodeStamps(b, int(files))
		if err != nil {
			return
		}
		if re := encodeStamps(es); string(re) != string(b) {
			t.Fatalf("re-encoding differs: %x vs %x", re, b)
		}
	})
}

// flipInPlace flips one bit of the file's sixth chunk, writing through an
// open file (the inode stays).
// waitClockTick waits until the file system's timestamp clock has moved
// past path's ctime, so that an edit made now changes the file's stamp (the
// kernel's clock for timestamps ticks every few milliseconds). A probe file
// written until its ctime is later than path's shows the tick.
func waitClockTick(t *testing.T, path string) {
	t.Helper()
	s, ok := statStamp(path)
	if !ok {
		t.Fatalf("no stamp for %s", path)
	}
	probe := filepath.Join(t.TempDir(), "probe")
	testwait.Eventually(t, 10*time.Second, "the timestamp clock ticks past "+path+"'s ctime", func() error {
		if err := os.WriteFile(probe, []byte{1}, 0o644); err != nil {
			return err
		}
		p, ok := statStamp(probe)
		if !ok {
			return fmt.Errorf("no stamp for %s", probe)
		}
		if p.ctime <= s.ctime {
			return fmt.Errorf("a write now stamps ctime %d, %s has %d", p.ctime, path, s.ctime)
		}
		return nil
	})
}

func flipInPlace(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{data[5*MinChunkSize+9] ^ 1}, 5*MinChunkSize+9); err != nil {
		t.Fatal(err)
	}
}

// TestDownloadServesOwnChunksUnhashed: a chunk a Download verified and
// wrote itself is served without hashing it again; after a reopen (a
// resume) the same chunks are hashed when first served, and a chunk
// changed on disk in between is refused.
func TestDownloadServesOwnChunksUnhashed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	data := xof("own", 8*MinChunkSize+77)
	writeFile(t, path, data, 0o644)
	st := openStore(t)
	p := publish(t, st, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 2})
	src := openItem(t, st, p.ID)
	dst := openStore(t)
	dl, err := dst.CreateDownload(p.Manifest, p.Leaves, t.TempDir(), DownloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := p.Manifest.NumChunks()
	ref := make([][]byte, n)
	for i := range n {
		b, err := src.ReadChunk(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		ref[i] = b
		if err := dl.WriteChunk(i, b); err != nil {
			t.Fatal(err)
		}
	}
	serve := func(dl *Download, want func(i int) error) int64 {
		t.Helper()
		before := verifyHashes.Load()
		for i := range n {
			b, err := dl.ReadChunk(i, nil)
			if w := want(i); (w == nil) != (err == nil) || (w != nil && !errors.Is(err, w)) {
				t.Fatalf("chunk %d: err %v, want %v", i, err, w)
			}
			if err == nil && string(b) != string(ref[i]) {
				t.Fatalf("chunk %d served wrong bytes", i)
			}
		}
		return verifyHashes.Load() - before
	}
	none := func(int) error { return nil }
	if h := serve(dl, none); h != 0 {
		t.Fatalf("served its own %d chunks with %d hashes, want 0", n, h)
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	dl, err = dst.OpenDownload(p.ID, DownloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	// Chunk 1 lies in the output file: change a byte behind the Download.
	out := dl.h.data.paths[0]
	f, err := os.OpenFile(out, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{data[MinChunkSize] ^ 1}, MinChunkSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	changed := p.Manifest.ChunkOfData(1)
	if h := serve(dl, func(i int) error {
		if i == changed {
			return ErrModified
		}
		return nil
	}); h != int64(n) {
		t.Fatalf("after a resume, serving %d chunks hashed %d, want every one", n, h)
	}
}
