package benchfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "7B": 7, "2KiB": 2 << 10, "1.5MiB": 3 << 19, "1GiB": 1 << 30} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "MiB", "1TiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func TestWriteRandomSameFile(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	size := int64(2<<20 + 123)
	if err := WriteRandom(a, size, [32]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := WriteRandom(b, size, [32]byte{1}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(a); err != nil || fi.Size() != size {
		t.Fatalf("size %v, %v; want %d", fi, err, size)
	}
	if err := SameFile(a, b); err != nil {
		t.Fatalf("same seed, same size: %v", err)
	}
	if err := WriteRandom(c, size, [32]byte{2}); err != nil {
		t.Fatal(err)
	}
	if err := SameFile(a, c); err == nil || !strings.Contains(err.Error(), "offset 0") {
		t.Errorf("other seed: %v, want a difference at offset 0", err)
	}
	if err := WriteRandom(c, size-1, [32]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := SameFile(a, c); err == nil {
		t.Error("one byte short: no error")
	}
}
