package seed

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/swarm"
)

// holdParity makes rebuilds wait until release is closed (or their node
// stops), and reports each start on started. The test's end restores it.
func holdParity(t *testing.T) (started <-chan chunker.ContentID, release chan struct{}) {
	t.Helper()
	s := make(chan chunker.ContentID, 8)
	r := make(chan struct{})
	testHookParity = func(ctx context.Context, id chunker.ContentID) {
		s <- id
		select {
		case <-r:
		case <-ctx.Done():
		}
	}
	t.Cleanup(func() { testHookParity = func(context.Context, chunker.ContentID) {} })
	return s, r
}

// fetchChunk asks peer (at addr) for chunk i of id through from's overlay,
// as a downloader does, and returns the status and, for StatusOK, the
// chunk.
func fetchChunk(ctx context.Context, from *Node, peer *Node, id chunker.ContentID, i int) (swarm.Status, []byte, error) {
	st, err := from.openStream(ctx, peer.PeerID(), peer.Addr())
	if err != nil {
		return 0, nil, err
	}
	defer st.Close()
	if _, err := st.Write(swarm.AppendRequest(nil, swarm.Request{Kind: swarm.KindChunk, ID: id, Index: uint32(i)})); err != nil {
		return 0, nil, err
	}
	var hdr [5]byte
	if _, err := io.ReadFull(st, hdr[:]); err != nil {
		return 0, nil, err
	}
	status, n, err := swarm.DecodeResponseHeader(hdr[:])
	if err != nil {
		return 0, nil, err
	}
	if n > 64<<20 {
		return 0, nil, fmt.Errorf("chunk of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(st, b); err != nil {
		return 0, nil, err
	}
	return status, b, nil
}

// checkServed asks g for every chunk of id from c and fails unless the
// chunks in held come back whole and matching their leaves, and the others
// are refused as not held.
func checkServed(t *testing.T, ctx context.Context, c, g *Node, id chunker.ContentID, leaves *chunker.LeafLayer, held func(i int) bool) {
	t.Helper()
	for i := range leaves.Len() {
		status, b, err := fetchChunk(ctx, c, g, id, i)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		switch {
		case held(i) && status != swarm.StatusOK:
			t.Fatalf("chunk %d: %s (%q), want it served", i, status, b)
		case held(i) && chunker.HashChunk(b) != leaves.Hash(i):
			t.Fatalf("chunk %d served does not match its leaf", i)
		case !held(i) && status != swarm.StatusNotHave:
			t.Fatalf("chunk %d (not held) answered %s, want %s", i, status, swarm.StatusNotHave)
		}
	}
}

// publishFile publishes size random bytes from a new node.
func publishFile(t *testing.T, ctx context.Context, size int) (*Node, Published) {
	t.Helper()
	pub := startNode(t)
	src := filepath.Join(t.TempDir(), "p.bin")
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, p
}

func seededItem(t *testing.T, n *Node, id chunker.ContentID) *chunker.Item {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	it := n.seeding[id]
	if it == nil {
		t.Fatalf("the node does not seed %s", id)
	}
	return it
}

// TestGetInstallsBeforeParity: Get returns with the verified output at its
// final path while the parity it did not fetch is not rebuilt yet (the
// rebuild is held); meanwhile the node seeds what it holds, lists the item
// as rebuilding parity, and answers a peer's request for a parity chunk it
// lacks with "not held". Once the rebuild runs, every chunk is served over
// the network and matches its leaf, and the item lists as complete.
func TestGetInstallsBeforeParity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started, release := holdParity(t)
	_, p := publishFile(t, ctx, 6<<20+77)
	id := mustID(t, p.Item.ID)
	g := startNode(t)
	it, err := g.Get(ctx, GetRequest{Link: p.Link, Out: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(p.Item.Path)
	if got, err := os.ReadFile(it.Path); err != nil || string(got) != string(want) {
		t.Fatalf("output at %s after Get: err %v, equal %v", it.Path, err, string(got) == string(want))
	}
	if got := <-started; got != id {
		t.Fatalf("rebuild started for %s, want %s", got, id)
	}
	items := mustItems(t, g)
	if len(items) != 1 || items[0].Kind != KindDownloaded || items[0].Parity != ParityRebuilding {
		t.Fatalf("items while the parity is rebuilt: %+v, want one downloaded item rebuilding parity", items)
	}
	if st, _ := g.Status(ctx); st.ParityRebuilds != 1 {
		t.Fatalf("Status.ParityRebuilds = %d, want 1", st.ParityRebuilds)
	}
	item := seededItem(t, g, id)
	missing := item.MissingParity()
	if missing == 0 {
		t.Fatal("the download fetched every parity chunk: nothing left to test")
	}
	held := item.Have()
	c := startNode(t)
	checkServed(t, ctx, c, g, id, item.Leaves(), held.Has)

	close(release)
	testwait.Eventually(t, time.Minute, "the parity is rebuilt", func() error {
		if items := mustItems(t, g); items[0].Parity != "" {
			return fmt.Errorf("item %+v", items[0])
		}
		return nil
	})
	checkServed(t, ctx, c, g, id, item.Leaves(), func(int) bool { return true })
	mt := g.Metrics()
	if mt.ParityRebuilds.Load() != 1 || mt.ParityRebuilt.Load() != 1 || mt.ParityChunksRebuilt.Load() != int64(missing) || mt.ParityRebuildFailures.Load() != 0 {
		t.Fatalf("metrics: %d started, %d done, %d chunks, %d failed; want 1, 1, %d, 0",
			mt.ParityRebuilds.Load(), mt.ParityRebuilt.Load(), mt.ParityChunksRebuilt.Load(), mt.ParityRebuildFailures.Load(), missing)
	}
	if st, _ := g.Status(ctx); st.ParityRebuilds != 0 {
		t.Fatalf("Status.ParityRebuilds = %d after the rebuild", st.ParityRebuilds)
	}
}

// TestRestartDuringParityRebuild: a node stops (as a crash would) while the
// parity of an installed download is being rebuilt, with the parity file's
// unrecorded chunks garbled as a write cut off by the crash leaves them.
// The restarted node seeds the item at once but answers requests for the
// parity it lacks with "not held", never with bytes; it then rebuilds the
// parity and serves every chunk, matching its leaf.
func TestRestartDuringParityRebuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started, release := holdParity(t)
	pub, p := publishFile(t, ctx, 5<<20+3)
	id := mustID(t, p.Item.ID)
	dir := t.TempDir()
	g1, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0", API: "off", Gateway: "off"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g1.Get(ctx, GetRequest{Link: p.Link, Out: t.TempDir()}, nil); err != nil {
		t.Fatal(err)
	}
	<-started
	g1.Close() // the rebuild is under way: it ends without a record
	pub.Close()

	st, err := chunker.OpenStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := st.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	m, held := onDisk.Manifest(), onDisk.Have()
	missing := onDisk.MissingParity()
	onDisk.Close()
	if missing == 0 {
		t.Fatal("the download fetched every parity chunk: nothing left to test")
	}
	garbleParity(t, filepath.Join(dir, "store", "items", id.String(), "parity"), m, held)

	g2, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0", API: "off", Gateway: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	if got := <-started; got != id {
		t.Fatalf("the restarted node rebuilds %s, want %s", got, id)
	}
	c := startNode(t)
	item := seededItem(t, g2, id)
	checkServed(t, ctx, c, g2, id, item.Leaves(), held.Has)
	close(release)
	testwait.Eventually(t, time.Minute, "the restarted node rebuilds the parity", func() error {
		if items := mustItems(t, g2); items[0].Parity != "" {
			return fmt.Errorf("item %+v", items[0])
		}
		return nil
	})
	checkServed(t, ctx, c, g2, id, item.Leaves(), func(int) bool { return true })
	if got := g2.Metrics().ParityChunksRebuilt.Load(); got != int64(missing) {
		t.Fatalf("the restarted node rebuilt %d parity chunks, want %d", got, missing)
	}
}

// garbleParity overwrites the parity chunks not in held.
func garbleParity(t *testing.T, path string, m *chunker.Manifest, held chunker.Bitmap) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, m.ChunkSize)
	for i := range junk {
		junk[i] = 0xa5
	}
	// The parity file holds stripe s's parity at s*m*ChunkSize, chunk by
	// chunk; every stripe but a short last one has full-size parity.
	for s := range m.NumStripes() {
		for j := range m.ParityShards {
			i := m.StripeStart(s) + m.StripeDataCount(s) + j
			if held.Has(i) {
				continue
			}
			n := m.ChunkLen(i)
			off := int64(s)*int64(m.ParityShards)*int64(m.ChunkSize) + int64(j)*int64(n)
			if _, err := f.WriteAt(junk[:n], off); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestParityRebuildFailsOnEditedOutput: an output edited after install
// cannot yield its parity; the item lists as failed, the failure counts,
// and the node keeps seeding.
func TestParityRebuildFailsOnEditedOutput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started, release := holdParity(t)
	_, p := publishFile(t, ctx, 3<<20+1)
	g := startNode(t)
	it, err := g.Get(ctx, GetRequest{Link: p.Link, Out: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	// Every stripe edited, so that whichever parity the download fetched,
	// some stripe with parity to rebuild has changed.
	b, err := os.ReadFile(it.Path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(it.Path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	close(release)
	testwait.Eventually(t, time.Minute, "the rebuild fails", func() error {
		if items := mustItems(t, g); items[0].Parity != ParityFailed {
			return fmt.Errorf("item %+v", items[0])
		}
		return nil
	})
	if g.Metrics().ParityRebuildFailures.Load() != 1 {
		t.Fatalf("%d failures counted, want 1", g.Metrics().ParityRebuildFailures.Load())
	}
	if st, _ := g.Status(ctx); st.ParityRebuilds != 0 {
		t.Fatalf("Status.ParityRebuilds = %d after the failure", st.ParityRebuilds)
	}
}

// TestRemoveDuringParityRebuild: an item removed while its parity is being
// rebuilt stops the rebuild quietly (no failure counted), and the store
// keeps nothing of it; the output stays.
func TestRemoveDuringParityRebuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started, release := holdParity(t)
	_, p := publishFile(t, ctx, 3<<20+9)
	g := startNode(t)
	it, err := g.Get(ctx, GetRequest{Link: p.Link, Out: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if _, err := g.Remove(ctx, p.Item.ID); err != nil {
		t.Fatal(err)
	}
	close(release)
	testwait.Eventually(t, time.Minute, "the rebuild ends", func() error {
		if c := g.rebuildingCount(); c != 0 {
			return fmt.Errorf("%d rebuilding", c)
		}
		return nil
	})
	if f := g.Metrics().ParityRebuildFailures.Load(); f != 0 {
		t.Fatalf("%d failures counted for a removed item", f)
	}
	if _, err := os.Stat(filepath.Join(g.cfg.DataDir, "store", "items", p.Item.ID)); !os.IsNotExist(err) {
		t.Fatalf("the store still holds the removed item: %v", err)
	}
	if _, err := os.Stat(it.Path); err != nil {
		t.Fatalf("the output went with the item: %v", err)
	}
}
