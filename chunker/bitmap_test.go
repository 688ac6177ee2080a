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

func TestCorruptBitmapRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	writeFile(t, path, xof("cb", 3*MinChunkSize), 0o644)
	p := publish(t, nil, path, PublishOptions{ChunkSize: MinChunkSize})
	st := openStore(t)
	dl, err := st.CreateDownload(p.Manifest, p.Leaves, t.TempDir(), DownloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dl.Close()
	have := filepath.Join(st.itemDir(p.ID), fileHave)
	raw, _ := os.ReadFile(have)
	raw[bitmapHeader] |= 1 // claim chunk 0 without updating the checksum
	os.WriteFile(have, raw, 0o600)
	if _, err := st.OpenDownload(p.ID, DownloadOptions{}); !errors.Is(err, ErrBadState) {
		t.Fatalf("OpenDownload with a corrupt bitmap: %v, want ErrBadState", err)
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
