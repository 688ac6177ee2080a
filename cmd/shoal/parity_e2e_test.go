package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/seed"
)

// libraryItem returns the item id as "shoal ls --json" on data lists it.
func libraryItem(t *testing.T, bin, home, data, id string) (seed.Item, error) {
	t.Helper()
	out, errOut, code := shoal(t, bin, home, "ls", "--json", "--data", data)
	if code != 0 {
		return seed.Item{}, fmt.Errorf("ls: exit %d: %s", code, errOut)
	}
	var items []seed.Item
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		return seed.Item{}, fmt.Errorf("ls printed %q: %v", out, err)
	}
	for _, it := range items {
		if it.ID == id {
			return it, nil
		}
	}
	return seed.Item{}, fmt.Errorf("ls lists no %s: %s", id, out)
}

// waitParityRebuilt waits until the node on data holds every parity chunk
// of id (ls no longer says otherwise).
func waitParityRebuilt(t *testing.T, bin, home, data, id string) {
	t.Helper()
	testwait.Eventually(t, time.Minute, "the parity is rebuilt", func() error {
		it, err := libraryItem(t, bin, home, data, id)
		if err == nil && it.Parity != "" {
			err = fmt.Errorf("item's parity: %s", it.Parity)
		}
		return err
	})
}

// TestOneShotGetLeavesParityToNode: a get without a running node returns
// with the verified output and does not rebuild the parity it did not
// fetch (nothing seeds it meanwhile); ls says so in words and in JSON. The
// next "shoal node" on the folder rebuilds it, and a third host then gets
// the content from that node alone.
func TestOneShotGetLeavesParityToNode(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	src := filepath.Join(root, "src", "release")
	files := writeFolder(t, src)
	a := startNodeProc(t, bin, filepath.Join(root, "a", "data"))
	out, errOut, code := shoal(t, bin, filepath.Join(root, "a"), "publish", "--json", "--data", a.data, src)
	var pubs []seed.Published
	if code != 0 || json.Unmarshal([]byte(out), &pubs) != nil || len(pubs) != 1 {
		t.Fatalf("publish: exit %d, printed %q: %s", code, out, errOut)
	}
	id := pubs[0].Item.ID

	g := filepath.Join(root, "g")
	gData := filepath.Join(g, "data")
	if _, e, code := shoal(t, bin, g, "get", "--data", gData, pubs[0].Link, "-o", filepath.Join(g, "out")); code != 0 {
		t.Fatalf("one-shot get: exit %d: %s", code, e)
	}
	sameFolder(t, filepath.Join(g, "out", "release"), files)
	it, err := libraryItem(t, bin, g, gData, id)
	if err != nil {
		t.Fatal(err)
	}
	if it.Kind != seed.KindDownloaded || it.Parity != seed.ParityPending {
		t.Fatalf("after a one-shot get, ls --json lists %+v; want downloaded, parity pending", it)
	}
	ls, _, _ := shoal(t, bin, g, "ls", "--data", gData)
	if !strings.Contains(ls, "downloaded (parity rebuilt when a node runs)") {
		t.Fatalf("ls after a one-shot get:\n%s", ls)
	}

	n := startNodeProc(t, bin, gData)
	waitParityRebuilt(t, bin, g, gData, id)
	ls, _, _ = shoal(t, bin, g, "ls", "--data", gData)
	if strings.Contains(ls, "parity") {
		t.Fatalf("ls after the rebuild:\n%s", ls)
	}
	a.kill()
	h := filepath.Join(root, "h")
	link := fmt.Sprintf("shoal:%s?name=release&peer=%s@%s", id, n.status.PeerID, n.status.Listen)
	if _, e, code := shoal(t, bin, h, "get", "--data", filepath.Join(h, "data"), link, "-o", filepath.Join(h, "out")); code != 0 {
		t.Fatalf("get from the node that rebuilt the parity: exit %d: %s", code, e)
	}
	sameFolder(t, filepath.Join(h, "out", "release"), files)
}

// TestKillDuringParityRebuild: a node killed with SIGKILL right after a
// get through it returned (its parity rebuild under way, or not yet begun)
// restarts on its folder, with the publisher gone, rebuilds the parity,
// and then holds every parity chunk on disk matching its leaf (read from
// the parity file itself, not through the serving path, which would heal
// a bad chunk); a third host gets the content from it alone.
func TestKillDuringParityRebuild(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	src := filepath.Join(root, "src", "big.bin")
	data := make([]byte, 48<<20)
	rand.NewChaCha8([32]byte{7}).Read(data)
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	a := startNodeProc(t, bin, filepath.Join(root, "a", "data"))
	out, errOut, code := shoal(t, bin, filepath.Join(root, "a"), "publish", "--json", "--data", a.data, src)
	var pubs []seed.Published
	if code != 0 || json.Unmarshal([]byte(out), &pubs) != nil || len(pubs) != 1 {
		t.Fatalf("publish: exit %d, printed %q: %s", code, out, errOut)
	}
	id := pubs[0].Item.ID

	g := filepath.Join(root, "g")
	gData := filepath.Join(g, "data")
	n := startNodeProc(t, bin, gData)
	if _, e, code := shoal(t, bin, g, "get", "--data", gData, pubs[0].Link, "-o", filepath.Join(g, "out")); code != 0 {
		t.Fatalf("get: exit %d: %s", code, e)
	}
	n.kill() // SIGKILL
	cid, err := chunker.ParseID(id)
	if err != nil {
		t.Fatal(err)
	}
	st, err := chunker.OpenStore(filepath.Join(gData, "store"))
	if err != nil {
		t.Fatal(err)
	}
	if it, err := st.Open(cid); err == nil {
		t.Logf("after SIGKILL the store records %d of %d parity chunks missing", it.MissingParity(), it.Manifest().NumStripes()*it.Manifest().ParityShards)
		it.Close()
	}
	a.kill()

	n2 := startNodeProc(t, bin, gData)
	waitParityRebuilt(t, bin, g, gData, id)
	checkParityFile(t, st, cid, filepath.Join(gData, "store", "items", id, "parity"))
	got, err := os.ReadFile(filepath.Join(g, "out", "big.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("output after the restart: err %v, equal %v", err, bytes.Equal(got, data))
	}
	h := filepath.Join(root, "h")
	link := fmt.Sprintf("shoal:%s?name=big.bin&peer=%s@%s", id, n2.status.PeerID, n2.status.Listen)
	if _, e, code := shoal(t, bin, h, "get", "--data", filepath.Join(h, "data"), link, "-o", filepath.Join(h, "out")); code != 0 {
		t.Fatalf("get from the restarted node: exit %d: %s", code, e)
	}
	if got, err := os.ReadFile(filepath.Join(h, "out", "big.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("third host's output: err %v, equal %v", err, bytes.Equal(got, data))
	}
}

// checkParityFile fails unless every parity chunk of id in the parity file
// at path matches its leaf. The file holds stripe s's parity chunk j at
// s*m*ChunkSize + j*P_s (chunker's package doc).
func checkParityFile(t *testing.T, st *chunker.Store, id chunker.ContentID, path string) {
	t.Helper()
	it, err := st.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	m, leaves := it.Manifest(), it.Leaves()
	if it.MissingParity() != 0 {
		t.Fatalf("the store records %d parity chunks missing after the rebuild", it.MissingParity())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for s := range m.NumStripes() {
		for j := range m.ParityShards {
			i := m.StripeStart(s) + m.StripeDataCount(s) + j
			b := make([]byte, m.ChunkLen(i))
			off := int64(s)*int64(m.ParityShards)*int64(m.ChunkSize) + int64(j)*int64(len(b))
			if _, err := f.ReadAt(b, off); err != nil {
				t.Fatalf("parity chunk %d: %v", i, err)
			}
			if chunker.HashChunk(b) != leaves.Hash(i) {
				t.Fatalf("parity chunk %d on disk does not match its leaf", i)
			}
		}
	}
}
