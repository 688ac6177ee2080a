package chunker

import (
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// TestMappedInputCutShort truncates a mapped input under the pipeline: the
// fault must come back as ErrModified, not crash the process.
func TestMappedInputCutShort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	writeFile(t, path, xof("cut", 8*MinChunkSize), 0o644)
	m := &Manifest{Name: "f", Size: 8 * MinChunkSize, ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 2, Hash: HashBLAKE3}
	mapped, unmap := mapFile(path, m.Size)
	if mapped == nil {
		t.Skip("no mmap on this platform")
	}
	defer unmap()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	src := &pipelineSource{c: newContent(m, path, false), mapped: mapped}
	defer src.c.Close()
	b := &stripeBuf{s: 1, parity: make([]byte, 2*MinChunkSize), shards: make([][]byte, 6)}
	done := make(chan error)
	go func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		_, err := codeStripe(m, b, src, make([][32]byte, m.NumChunks()), nil)
		done <- err
	}()
	if err := <-done; !errors.Is(err, ErrModified) {
		t.Fatalf("codeStripe over a truncated mapping: %v, want ErrModified", err)
	}
}
