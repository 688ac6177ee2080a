package chunker

import (
	"path/filepath"
	"testing"
)

// TestHotPathAllocs pins the per-chunk allocation budget of serving and
// receiving: none, given a reused buffer.
func TestHotPathAllocs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	content := xof("allocs", 40*MinChunkSize)
	writeFile(t, path, content, 0o644)
	st := openStore(t)
	p := publish(t, st, path, PublishOptions{ChunkSize: MinChunkSize})
	item := openItem(t, st, p.ID)
	buf := make([]byte, MinChunkSize)
	i := 0
	if a := testing.AllocsPerRun(20, func() {
		if _, err := item.ReadChunk(i%p.Manifest.NumChunks(), buf); err != nil {
			t.Fatal(err)
		}
		i++
	}); a != 0 {
		t.Errorf("Item.ReadChunk: %.1f allocations per chunk, want 0", a)
	}
	chunks := splitChunks(t, p.Manifest, content)
	dl, err := openStore(t).CreateDownload(p.Manifest, p.Leaves, t.TempDir(), DownloadOptions{SyncEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	i = 0
	if a := testing.AllocsPerRun(20, func() {
		if err := dl.WriteChunk(i, chunks[i]); err != nil {
			t.Fatal(err)
		}
		i++
	}); a != 0 {
		t.Errorf("Download.WriteChunk: %.1f allocations per chunk, want 0", a)
	}
}
