package chunker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestAutoChunkSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
		want int
	}{
		{"empty", 0, DefaultChunkSize},
		{"16 GiB", 16 << 30, DefaultChunkSize},
		{"16 GiB + 1", 16<<30 + 1, 512 << 10},
		{"256 GiB", 256 << 30, MaxChunkSize},
		{"1 TiB", 1 << 40, MaxChunkSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := AutoChunkSize(tc.size); got != tc.want {
				t.Fatalf("AutoChunkSize(%d) = %d, want %d", tc.size, got, tc.want)
			}
		})
	}
}

// TestLayoutConsistent checks the layout helpers against each other for
// many geometries: data chunks tile the content in order, parity chunks
// tile the parity file, stripe starts follow s*(k+m).
func TestLayoutConsistent(t *testing.T) {
	cs := int64(MinChunkSize)
	for _, size := range []int64{0, 1, cs - 1, cs, cs + 1, 4 * cs, 9*cs + 3, 33 * cs} {
		for _, km := range [][2]int{{1, 0}, {1, 1}, {4, 2}, {16, 4}, {3, 0}} {
			m := &Manifest{Name: "x", Size: size, ChunkSize: int(cs), DataShards: km[0], ParityShards: km[1], Hash: HashBLAKE3}
			var dataOff, parOff int64
			g := 0
			for i := range m.NumChunks() {
				s, pos := m.StripeOf(i)
				if i-pos != m.StripeStart(s) {
					t.Fatalf("size %d %v: chunk %d stripe %d starts at %d", size, km, i, s, m.StripeStart(s))
				}
				if !m.IsParity(i) {
					if m.DataChunkOffset(i) != dataOff || m.DataIndex(i) != g || m.ChunkOfData(g) != i {
						t.Fatalf("size %d %v: data chunk %d at %d (index %d), want %d (%d)", size, km, i, m.DataChunkOffset(i), m.DataIndex(i), dataOff, g)
					}
					dataOff += int64(m.ChunkLen(i))
					g++
				} else {
					if m.parityOffset(i) != parOff || m.DataChunkOffset(i) != -1 {
						t.Fatalf("size %d %v: parity chunk %d at %d, want %d", size, km, i, m.parityOffset(i), parOff)
					}
					parOff += int64(m.ChunkLen(i))
				}
			}
			if dataOff != size || parOff != m.paritySize() || g != m.NumDataChunks() {
				t.Fatalf("size %d %v: data covers %d, parity %d of %d", size, km, dataOff, parOff, m.paritySize())
			}
		}
	}
}

func TestEmptyInputs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "empty"), nil, 0o644)
	if err := os.Mkdir(filepath.Join(dir, "nothing"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"empty", "nothing"} {
		t.Run(name, func(t *testing.T) {
			st := openStore(t)
			p := publish(t, st, filepath.Join(dir, name), PublishOptions{})
			if p.Manifest.NumChunks() != 0 || p.Manifest.Root != EmptyRoot {
				t.Fatalf("%d chunks, root %x; want 0 and EmptyRoot", p.Manifest.NumChunks(), p.Manifest.Root)
			}
			out := t.TempDir()
			dl, err := openStore(t).CreateDownload(p.Manifest, p.Leaves, out, DownloadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !dl.Complete() {
				t.Fatal("empty download not complete")
			}
			if err := dl.Finish(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := dl.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(out, name)); err != nil {
				t.Fatalf("output not created: %v", err)
			}
		})
	}
}

func TestPublishProgressAndCancel(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	writeFile(t, path, xof("prog", 20*MinChunkSize+5), 0o644)
	var last, calls int64
	publish(t, nil, path, PublishOptions{ChunkSize: MinChunkSize, DataShards: 2, Progress: func(done, total int64) {
		if done < last || total != 20*MinChunkSize+5 {
			t.Errorf("progress went from %d to %d of %d", last, done, total)
		}
		last = done
		calls++
	}})
	if last != 20*MinChunkSize+5 || calls != 11 {
		t.Fatalf("progress ended at %d after %d calls, want the full size after 11", last, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Publish(ctx, nil, path, PublishOptions{ChunkSize: MinChunkSize}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestPublishRejectsSymlink(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "d", "a"), []byte("a"), 0o644)
	if err := os.Symlink("a", filepath.Join(dir, "d", "link")); err != nil {
		t.Skip(err)
	}
	if _, err := Publish(context.Background(), nil, filepath.Join(dir, "d"), PublishOptions{}); err == nil {
		t.Fatal("published a folder holding a symlink")
	}
}
