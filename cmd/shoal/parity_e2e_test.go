package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
