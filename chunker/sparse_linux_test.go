package chunker

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSparseDownloadHoldsOnlyWrittenChunks: a download created with
// Sparse takes no blocks for its output and parity until chunks are
// written, then about the chunks written; the default reserves the size.
func TestSparseDownloadHoldsOnlyWrittenChunks(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, src, xof("sparse", 8<<20), 0o644)
	pub, err := Publish(context.Background(), nil, src, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	blocks := func(p string) int64 {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	st := openStore(t)
	out := t.TempDir()
	dl, err := st.CreateDownload(pub.Manifest, pub.Leaves, out, DownloadOptions{Sparse: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	root := filepath.Join(out, pub.Manifest.Name)
	if fi, err := os.Stat(root); err != nil || fi.Size() != pub.Manifest.Size {
		t.Fatalf("output %v, want %d bytes long", err, pub.Manifest.Size)
	}
	if b := blocks(root); b != 0 {
		t.Fatalf("sparse output takes %d bytes before any chunk", b)
	}
	if b := blocks(filepath.Join(st.itemDir(pub.ID), fileParity)); b != 0 {
		t.Fatalf("sparse parity takes %d bytes before any chunk", b)
	}
	srcItem := openItem(t, st2(t, src), pub.ID)
	defer srcItem.Close()
	c := pub.Manifest.ChunkOfData(0)
	b, err := srcItem.ReadChunk(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dl.WriteChunk(c, b); err != nil {
		t.Fatal(err)
	}
	if err := dl.Sync(); err != nil {
		t.Fatal(err)
	}
	cs := int64(pub.Manifest.ChunkSize)
	if got := blocks(root); got < cs || got > cs+64<<10 {
		t.Fatalf("one chunk of %d bytes written, the output takes %d", cs, got)
	}
}

// st2 publishes path into a store of its own, to read chunks from.
func st2(t *testing.T, path string) *Store {
	s := openStore(t)
	publish(t, s, path, PublishOptions{})
	return s
}
