//go:build linux

package chunker

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"
)

// aligned returns a copy of b in a page-aligned buffer, as swarm's chunk
// buffers are.
func aligned(b []byte) []byte {
	raw := make([]byte, len(b)+4095)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(raw)))) & 4095
	out := raw[off : off+len(b)]
	copy(out, b)
	return out
}

// directSetup publishes a file of 12 chunks and a few bytes (so the last
// chunk is not aligned) and returns its item and a fresh download of it,
// skipping the test where the temporary folder has no direct I/O.
func directSetup(t *testing.T, opts DownloadOptions) (data []byte, p *Published, src *Item, dst *Store, out string, dl *Download) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	data = xof("direct", 12*MinChunkSize+100)
	writeFile(t, path, data, 0o644)
	st := openStore(t)
	p = publish(t, st, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 2})
	src = openItem(t, st, p.ID)
	dst, out = openStore(t), t.TempDir()
	dl, err := dst.CreateDownload(p.Manifest, p.Leaves, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dl.Close() })
	if f, _ := openDirect(dl.h.data.paths[0]); f == nil {
		t.Skipf("the file system of %s offers no direct I/O", out)
	} else {
		f.Close()
	}
	return data, p, src, dst, out, dl
}

// writeAligned writes chunks [from, to) of src into dl from 4 goroutines,
// each chunk from a page-aligned buffer.
func writeAligned(t *testing.T, src *Item, dl *Download, chunks []int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(chunks))
	for w := range 4 {
		wg.Go(func() {
			for k := w; k < len(chunks); k += 4 {
				b, err := src.ReadChunk(chunks[k], nil)
				if err == nil {
					err = dl.WriteChunk(chunks[k], aligned(b))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func allChunks(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// TestDownloadDirectIO: a download writes and serves its aligned chunks
// with direct I/O and the rest through the page cache, and the output
// holds exactly the source's bytes; with PageCache set no transfer is
// direct.
func TestDownloadDirectIO(t *testing.T) {
	data, p, src, _, out, dl := directSetup(t, DownloadOptions{})
	n := p.Manifest.NumChunks()
	before := directOps.Load()
	writeAligned(t, src, dl, allChunks(n))
	wrote := directOps.Load() - before
	// Every data chunk but the short last one is aligned.
	if want := int64(p.Manifest.NumDataChunks() - 1); wrote < want {
		t.Fatalf("%d direct writes, want at least %d (one per whole data chunk)", wrote, want)
	}
	before = directOps.Load()
	for i := range n {
		want, err := src.ReadChunk(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dl.ReadChunk(i, aligned(make([]byte, len(want))))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ReadChunk(%d): %v, or bytes differ", i, err)
		}
	}
	if directOps.Load() == before {
		t.Fatal("no chunk was served with a direct read")
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "f"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("output differs from the source (err %v)", err)
	}

	_, p2, src2, _, _, dl2 := directSetup(t, DownloadOptions{PageCache: true})
	before = directOps.Load()
	writeAligned(t, src2, dl2, allChunks(p2.Manifest.NumChunks()))
	if d := directOps.Load() - before; d != 0 {
		t.Fatalf("PageCache download did %d direct transfers, want 0", d)
	}
}

// TestDirectIOResumeAfterCrash: chunks written directly and synced survive
// a crash; those not synced are not claimed; the resumed download
// completes with the source's bytes.
func TestDirectIOResumeAfterCrash(t *testing.T) {
	data, p, src, dst, out, dl := directSetup(t, DownloadOptions{SyncEvery: 1000})
	writeAligned(t, src, dl, []int{0, 2, 5, 7})
	if err := dl.Sync(); err != nil {
		t.Fatal(err)
	}
	writeAligned(t, src, dl, []int{1, 3}) // never synced
	dl.abandon()

	dl2, err := dst.OpenDownload(p.ID, DownloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer dl2.Close()
	want := NewBitmap(p.Manifest.NumChunks())
	for _, i := range []int{0, 2, 5, 7} {
		want.Set(i)
	}
	if got := dl2.Have(); !bytes.Equal(got, want) {
		t.Fatalf("after crash Have() = %08b, want %08b", got, want)
	}
	var missing []int
	for i := range p.Manifest.NumChunks() {
		if !dl2.HasChunk(i) {
			missing = append(missing, i)
		}
	}
	writeAligned(t, src, dl2, missing)
	if err := dl2.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "f"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed output differs from the source (err %v)", err)
	}
}

// TestDirectIOTruncatedOutput: an output cut short behind the download's
// back never serves bytes it does not hold: reading a chunk past the new
// end fails, and reopening the download reports the output modified.
func TestDirectIOTruncatedOutput(t *testing.T) {
	_, p, src, dst, _, dl := directSetup(t, DownloadOptions{})
	writeAligned(t, src, dl, allChunks(p.Manifest.NumChunks()))
	if err := os.Truncate(dl.h.data.paths[0], 2*MinChunkSize); err != nil {
		t.Fatal(err)
	}
	last := p.Manifest.ChunkOfData(p.Manifest.NumDataChunks() - 2)
	if b, err := dl.ReadChunk(last, aligned(make([]byte, MinChunkSize))); err == nil {
		t.Fatalf("chunk %d past the truncated end served %d bytes", last, len(b))
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.OpenDownload(p.ID, DownloadOptions{}); !errors.Is(err, ErrModified) {
		t.Fatalf("OpenDownload of a truncated output: %v, want ErrModified", err)
	}
}
