package chunker

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestBitmapFile(t *testing.T) {
	id := IDOf([]byte("bm"))
	for _, n := range []int{0, 1, 7, 8, 9, 100} {
		b := NewBitmap(n)
		for i := 0; i < n; i += 3 {
			b.Set(i)
		}
		enc := encodeBitmapFile(id, n, b)
		got, err := decodeBitmapFile(enc, id, n)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("n=%d: round trip gave %v, %v", n, got, err)
		}
		if n == 0 {
			continue
		}
		for _, tc := range []struct {
			name string
			raw  []byte
			id   ContentID
			n    int
		}{
			{"flipped bit", func() []byte { c := bytes.Clone(enc); c[bitmapHeader] ^= 2; return c }(), id, n},
			{"other id", enc, IDOf([]byte("other")), n},
			{"other count", enc, id, n + 8},
			{"truncated", enc[:len(enc)-1], id, n},
		} {
			if _, err := decodeBitmapFile(tc.raw, tc.id, tc.n); !errors.Is(err, ErrBadState) {
				t.Fatalf("n=%d %s: %v, want ErrBadState", n, tc.name, err)
			}
		}
	}
}

// TestDamagedBitmapRebuilt (issue 12 item 12): a damaged bitmap file is not
// a dead end. OpenDownload re-verifies the output against the leaf layer,
// keeps exactly the chunks that match and writes a good bitmap again.
func TestDamagedBitmapRebuilt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	writeFile(t, path, xof("cb", 8*MinChunkSize+77), 0o644)
	st := openStore(t)
	p := publish(t, st, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 2})
	src := openItem(t, st, p.ID)
	dst := openStore(t)
	dl, err := dst.CreateDownload(p.Manifest, p.Leaves, t.TempDir(), DownloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	held := []int{0, 2, 5, p.Manifest.NumChunks() - 1} // the last is parity
	for _, i := range held {
		b, err := src.ReadChunk(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := dl.WriteChunk(i, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	have := filepath.Join(dst.itemDir(p.ID), fileHave)
	raw, err := os.ReadFile(have)
	if err != nil {
		t.Fatal(err)
	}
	raw[bitmapHeader] ^= 0x10 // one flipped bit; the checksum no longer matches
	if err := os.WriteFile(have, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	dl, err = dst.OpenDownload(p.ID, DownloadOptions{})
	if err != nil {
		t.Fatalf("OpenDownload with a damaged bitmap: %v, want it rebuilt", err)
	}
	if !dl.Rebuilt() {
		t.Errorf("Rebuilt() = false after a damaged bitmap")
	}
	got := dl.Have()
	if got.Count() != len(held) {
		t.Errorf("rebuilt bitmap holds %d chunks, want %d", got.Count(), len(held))
	}
	for _, i := range held {
		if !got.Has(i) {
			t.Errorf("rebuilt bitmap lost verified chunk %d", i)
		}
	}
	dl.Close()
	dl, err = dst.OpenDownload(p.ID, DownloadOptions{})
	if err != nil {
		t.Fatalf("reopening after the rebuild: %v", err)
	}
	defer dl.Close()
	if dl.Rebuilt() || dl.Have().Count() != len(held) {
		t.Errorf("after the rebuild: Rebuilt %v, %d chunks; want a good bitmap with %d", dl.Rebuilt(), dl.Have().Count(), len(held))
	}
}

func FuzzStateFiles(f *testing.F) {
	id := IDOf([]byte("fz"))
	f.Add(encodeBitmapFile(id, 12, Bitmap{0xff, 0x0f}), uint16(12))
	f.Add(itemMeta{kind: kindDownload, root: "/tmp/x"}.encode(), uint16(0))
	f.Fuzz(func(t *testing.T, raw []byte, n uint16) {
		if b, err := decodeBitmapFile(raw, id, int(n)); err == nil {
			if !bytes.Equal(encodeBitmapFile(id, int(n), b), raw) {
				t.Fatalf("bitmap file does not re-encode to the same bytes")
			}
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, fileMeta), raw, 0o600)
		if m, err := readMeta(dir); err == nil && !bytes.Equal(m.encode(), raw) {
			t.Fatalf("meta file does not re-encode to the same bytes")
		}
	})
}
