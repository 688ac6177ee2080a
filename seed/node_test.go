package seed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/testwait"
)

// startNode starts a node on loopback with its own data folder.
func startNode(t *testing.T, boot ...string) *Node {
	t.Helper()
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", API: "127.0.0.1:0", Bootstrap: boot})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// writeTree makes a folder with nested files of random bytes.
func writeTree(t *testing.T, root string, seed uint64) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	files := map[string][]byte{
		"a.bin":          make([]byte, 3<<20+17),
		"sub/b.txt":      []byte("hello shoal\n"),
		"sub/deep/c.bin": make([]byte, 700<<10),
		"empty":          {},
	}
	for name, b := range files {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func checkTree(t *testing.T, root string, want map[string][]byte) {
	t.Helper()
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatalf("output %s: %v", name, err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("output %s differs: %d bytes, want %d", name, len(got), len(b))
		}
	}
}

func TestPublishGetByHintAndByDHT(t *testing.T) {
	pubNode := startNode(t)
	src := filepath.Join(t.TempDir(), "tree")
	files := writeTree(t, src, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := pubNode.Publish(ctx, PublishRequest{Path: src}, nil)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if !strings.Contains(pub.Link, pubNode.PeerID().String()+"@"+pubNode.Addr().String()) {
		t.Fatalf("link %s lacks the publisher's hint", pub.Link)
	}

	// By the link's hint.
	a := startNode(t)
	outA := t.TempDir()
	var last Progress
	it, err := a.Get(ctx, GetRequest{Link: pub.Link, Out: outA}, func(p Progress) { last = p })
	if err != nil {
		t.Fatalf("Get by hint: %v", err)
	}
	checkTree(t, filepath.Join(outA, "tree"), files)
	if it.Kind != KindDownloaded || it.Name != "tree" || last.Done != last.Total || last.Total == 0 {
		t.Fatalf("item %+v, last progress %+v", it, last)
	}

	// Only through the DHT: no hint, only a bootstrap node.
	b := startNode(t, pubNode.Addr().String())
	l, _ := chunker.ParseLink(pub.Link)
	l.Peers = nil
	outB := t.TempDir()
	if _, err := b.Get(ctx, GetRequest{Link: l.String(), Out: outB}, nil); err != nil {
		t.Fatalf("Get through the DHT: %v", err)
	}
	checkTree(t, filepath.Join(outB, "tree"), files)
}

func TestRestartSeedsLibraryAgain(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "f.bin")
	data := make([]byte, 2<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	os.WriteFile(src, data, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n1, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0", API: "off"})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := n1.Publish(ctx, PublishRequest{Path: src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n1.Close()

	n2, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0", API: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	if len(mustItems(t, n2)) != 1 || mustItems(t, n2)[0].ID != pub.Item.ID {
		t.Fatalf("restarted library = %+v, want the published item", mustItems(t, n2))
	}
	c := startNode(t)
	l, _ := chunker.ParseLink(pub.Link)
	l.Peers = []chunker.PeerHint{{PeerID: n2.PeerID().String(), Addr: n2.Addr().String()}}
	out := t.TempDir()
	if _, err := c.Get(ctx, GetRequest{Link: l.String(), Out: out}, nil); err != nil {
		t.Fatalf("Get from the restarted node: %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(out, "f.bin"))
	if !bytes.Equal(got, data) {
		t.Fatal("output differs from the source")
	}
}

func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	n, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0", API: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	_, err = Start(Config{DataDir: dir, Listen: "127.0.0.1:0", API: "off"})
	if !errors.Is(err, ErrDataDirBusy) {
		t.Fatalf("second node on one folder: %v, want ErrDataDirBusy", err)
	}
}

func TestBadInput(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	if _, err := n.Get(ctx, GetRequest{Link: "shoal:nonsense", Out: t.TempDir()}, nil); !errors.Is(err, ErrBadLink) {
		t.Errorf("bad link: %v, want ErrBadLink", err)
	}
	if _, err := n.Publish(ctx, PublishRequest{Path: filepath.Join(t.TempDir(), "missing")}, nil); err == nil {
		t.Error("publishing a missing path succeeded")
	}
	if _, err := n.Remove(ctx, "sh1nothing"); !errors.Is(err, ErrBadLink) {
		t.Errorf("removing an unknown ID: %v, want ErrNotInLibrary", err)
	}
}

func TestControlAPI(t *testing.T) {
	n := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, n.cfg.DataDir)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	src := filepath.Join(t.TempDir(), "x.bin")
	os.WriteFile(src, bytes.Repeat([]byte("shoal"), 100000), 0o644)
	var calls int
	pub, err := c.Publish(ctx, PublishRequest{Path: src}, func(Progress) { calls++ })
	if err != nil || !strings.HasPrefix(pub.Link, "shoal:") {
		t.Fatalf("Publish over the API: %+v, %v", pub, err)
	}
	items, err := c.Items(ctx)
	if err != nil || len(items) != 1 || items[0].ID != pub.Item.ID {
		t.Fatalf("Items = %+v, %v", items, err)
	}
	id, err := c.Identity(ctx)
	if err != nil || id.PeerID != n.PeerID().String() {
		t.Fatalf("Identity = %+v, %v", id, err)
	}
	if _, err := c.Remove(ctx, pub.Item.ID); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := c.Remove(ctx, pub.Item.ID); !errors.Is(err, ErrNotInLibrary) {
		t.Fatalf("second Remove: %v, want ErrNotInLibrary", err)
	}
	bad := *c
	bad.token = strings.Repeat("0", 64)
	if _, err := bad.Status(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong token: %v, want ErrUnauthorized", err)
	}
}

// TestFinishedDownloadHoldsParity: a finished download's node rebuilds the
// parity it did not fetch after installing it, and records it, so after a
// restart it serves every chunk.
func TestFinishedDownloadHoldsParity(t *testing.T) {
	pubNode := startNode(t)
	src := filepath.Join(t.TempDir(), "p.bin")
	data := make([]byte, 3<<20+5)
	for i := range data {
		data[i] = byte(i * 13)
	}
	os.WriteFile(src, data, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := pubNode.Publish(ctx, PublishRequest{Path: src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	g, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0", API: "off"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Get(ctx, GetRequest{Link: pub.Link, Out: t.TempDir()}, nil); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, time.Minute, "the parity is rebuilt", func() error {
		if items := mustItems(t, g); items[0].Parity != "" {
			return fmt.Errorf("item %+v", items[0])
		}
		return nil
	})
	g.Close()
	st, err := chunker.OpenStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := chunker.ParseID(pub.Item.ID)
	it, err := st.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	m := it.Manifest()
	if got := it.Have().Count(); got != m.NumChunks() {
		t.Fatalf("the finished download holds %d of %d chunks after a restart", got, m.NumChunks())
	}
	for i := 0; i < m.NumChunks(); i++ {
		if _, err := it.ReadChunk(i, make([]byte, m.ChunkLen(i))); err != nil {
			t.Fatalf("chunk %d (parity %v): %v", i, m.IsParity(i), err)
		}
	}
}

// TestStatusListsDownloads: a download waiting for peers shows in Status
// with its name, and leaves it when cancelled; having verified nothing, it
// leaves nothing behind (no library item, no partial folder).
func TestStatusListsDownloads(t *testing.T) {
	n := startNode(t)
	link := "shoal:sh17hpp7wqitbm65dzez656c2dlrpuz6rm7tgcd54e2imydjooi3z7q?name=waiting.bin&peer=127.0.0.1:9"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out := t.TempDir()
	go func() {
		_, err := n.Get(ctx, GetRequest{Link: link, Out: out}, nil)
		done <- err
	}()
	var st Status
	testwait.Eventually(t, 10*time.Second, "Status lists the download", func() error {
		if st, _ = n.Status(ctx); len(st.Downloads) == 0 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if len(st.Downloads) != 1 || st.Downloads[0].Name != "waiting.bin" || st.Active != 1 || st.Downloads[0].Total != 0 {
		t.Fatalf("status while waiting = %+v, want one download named waiting.bin of unknown size", st)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Get returned %v, want context.Canceled", err)
	}
	if st, _ := n.Status(context.Background()); len(st.Downloads) != 0 {
		t.Fatalf("status after cancel lists %+v", st.Downloads)
	}
	if items := mustItems(t, n); len(items) != 0 {
		t.Fatalf("library after cancel = %+v, want it empty", items)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Fatalf("the cancelled download left %s in its output folder", left[0].Name())
	}
}

func mustItems(t *testing.T, n *Node) []Item {
	t.Helper()
	items, err := n.Items(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return items
}
