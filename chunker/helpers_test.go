package chunker

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeebo/blake3"
)

// xof returns n deterministic bytes: the BLAKE3 extended output of seed.
func xof(seed string, n int) []byte {
	h := blake3.New()
	h.WriteString(seed)
	out := make([]byte, n)
	if _, err := h.Digest().Read(out); err != nil {
		panic(err)
	}
	return out
}

func writeFile(t testing.TB, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func openStore(t testing.TB) *Store {
	t.Helper()
	st, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// openItem opens the published item id of st, closed when the test ends.
func openItem(t testing.TB, st *Store, id ContentID) *Item {
	t.Helper()
	item, err := st.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { item.Close() })
	return item
}

func publish(t testing.TB, st *Store, path string, opts PublishOptions) *Published {
	t.Helper()
	p, err := Publish(context.Background(), st, path, opts)
	if err != nil {
		t.Fatalf("Publish(%s): %v", path, err)
	}
	return p
}

// sameTree fails unless the files under a and b have equal paths, bytes and
// normalised modes.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	collect := func(root string) map[string]string {
		out := map[string]string{}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(root, p)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			info, _ := d.Info()
			out[rel] = string(data) + "|" + NormalizeMode(info.Mode()).String()
			return nil
		})
		return out
	}
	ca, cb := collect(a), collect(b)
	if len(ca) != len(cb) {
		t.Errorf("trees differ: %d files in %s, %d in %s", len(ca), a, len(cb), b)
	}
	for k, v := range ca {
		w, ok := cb[k]
		switch {
		case !ok:
			t.Errorf("%s missing from %s", k, b)
		case !bytes.Equal([]byte(v), []byte(w)):
			t.Errorf("%s differs (content or mode) between %s and %s", k, a, b)
		}
	}
}
