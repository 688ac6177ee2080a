package chunker

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
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
		{"write in place", func(t *testing.T, path string, data []byte) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte{data[5*MinChunkSize+9] ^ 1}, 5*MinChunkSize+9); err != nil {
				t.Fatal(err)
			}
		}},
		{"write in place, mtime restored", func(t *testing.T, path string, data []byte) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte{data[5*MinChunkSize+9] ^ 1}, 5*MinChunkSize+9); err != nil {
				t.Fatal(err)
			}
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
			item, err := st.Open(p.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer item.Close()
			m := p.Manifest
			nParity := int64(m.NumChunks() - m.NumDataChunks())
			ok := func(int) error { return nil }
			if n := readAll(t, item, ok); n != int64(m.NumChunks()) {
				t.Fatalf("first pass hashed %d chunks, want all %d", n, m.NumChunks())
			}
			if n := readAll(t, item, ok); n != nParity {
				t.Fatalf("second pass hashed %d chunks, want only the %d parity chunks", n, nParity)
			}
			time.Sleep(20 * time.Millisecond) // let the timestamp clock tick
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
	item, err := st.Open(p.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer item.Close()
	ok := func(int) error { return nil }
	readAll(t, item, ok)
	if n := readAll(t, item, ok); n != int64(p.Manifest.NumChunks()) {
		t.Fatalf("second pass hashed %d chunks, want all %d (file too recent to cache)", n, p.Manifest.NumChunks())
	}
}
