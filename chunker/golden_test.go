package chunker

import (
	"bufio"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/chunker golden files")

const goldenDir = "../testdata/chunker"

// goldenInput is the file vector: the first n bytes of the BLAKE3 XOF of
// "shoal chunker golden v1", 16 KiB chunks, k=4, m=2: three stripes (4, 4
// and 3 data chunks), the last chunk 1,000 bytes.
const (
	goldenSeed = "shoal chunker golden v1"
	goldenSize = 10*MinChunkSize + 1000
)

// goldenRecord renders what a golden file pins down.
func goldenRecord(p *Published) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id: %s\n", p.ID)
	fmt.Fprintf(&b, "manifest: %x\n", p.Encoded)
	fmt.Fprintf(&b, "root: %x\n", p.Manifest.Root)
	m := p.Manifest
	for i := range m.NumChunks() {
		kind := "data"
		if m.IsParity(i) {
			kind = "parity"
		}
		fmt.Fprintf(&b, "chunk %d %s %d: %x\n", i, kind, m.ChunkLen(i), p.Leaves.Hash(i))
	}
	return b.String()
}

func checkGolden(t *testing.T, name string, p *Published) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	got := goldenRecord(p)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./chunker -run Golden -update to create)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("%s line %d differs: the format or the coding changed\n got %s\nwant %s", name, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s: %d lines, golden has %d", name, len(gl), len(wl))
	}
	// The recorded manifest must decode to the same ID.
	sc := bufio.NewScanner(strings.NewReader(string(want)))
	for sc.Scan() {
		if hx, ok := strings.CutPrefix(sc.Text(), "manifest: "); ok {
			b, _ := hex.DecodeString(hx)
			if _, err := DecodeManifest(b); err != nil || IDOf(b) != p.ID {
				t.Fatalf("golden manifest does not decode to the ID: %v", err)
			}
		}
	}
}

func TestGoldenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "golden.bin")
	writeFile(t, path, xof(goldenSeed, goldenSize), 0o644)
	p := publish(t, nil, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 2})
	if n := p.Manifest.NumStripes(); n != 3 || p.Manifest.ChunkLen(p.Manifest.ChunkOfData(10)) != 1000 {
		t.Fatalf("golden geometry changed: %d stripes", n)
	}
	checkGolden(t, "golden-file.txt", p)
}

func TestGoldenFolder(t *testing.T) {
	t.Run("generated", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "folder")
		makeFolder(t, root)
		checkGolden(t, "golden-folder-generated.txt", publish(t, nil, root, PublishOptions{ChunkSize: MinChunkSize, DataShards: 3, ParityShards: 2}))
	})
	t.Run("fixture", func(t *testing.T) {
		// testdata/chunker/folder as checked out; its files are all 0644.
		checkGolden(t, "golden-folder-fixture.txt", publish(t, nil, filepath.Join(goldenDir, "folder"), PublishOptions{}))
	})
}
