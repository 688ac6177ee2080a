package seed

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLibraryPersists(t *testing.T) {
	dir := t.TempDir()
	l, err := openLibrary(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	a := Item{ID: "a", Name: "one", Kind: KindPublished, Path: "/x", Size: 10, Added: now}
	b := Item{ID: "b", Name: "two", Kind: KindPartial, Path: "/y", Size: 20, Added: now.Add(time.Second)}
	if err := l.put(b); err != nil {
		t.Fatal(err)
	}
	if err := l.put(a); err != nil {
		t.Fatal(err)
	}
	l2, err := openLibrary(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := l2.list()
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("reopened library = %+v, want [a b] oldest first", got)
	}
	if _, err := l2.remove("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := l2.remove("a"); !errors.Is(err, ErrNotInLibrary) {
		t.Fatalf("second remove: %v, want ErrNotInLibrary", err)
	}
	l3, _ := openLibrary(dir)
	if _, ok := l3.get("a"); ok {
		t.Fatal("removed item came back after reopening")
	}
	st, err := os.Stat(filepath.Join(dir, "library.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("library.json: %v, mode %v", err, st.Mode())
	}
}

func TestLibraryDamaged(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "library.json"), []byte("{not json"), 0o600)
	_, err := openLibrary(dir)
	if err == nil || !strings.Contains(err.Error(), "move it away") {
		t.Fatalf("damaged library: %v, want an error saying what to do", err)
	}
}
