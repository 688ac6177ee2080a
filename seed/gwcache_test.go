package seed

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
)

// waitCond polls cond until it holds, failing after a minute.
func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gwCacheDisk measures, independently of the node's accounting, the disk
// blocks the gateway cache takes: every folder under gateway/ and the
// store entries of the same IDs.
func gwCacheDisk(t *testing.T, n *Node) int64 {
	t.Helper()
	dir := filepath.Join(n.cfg.DataDir, gatewayDir)
	ents, _ := os.ReadDir(dir)
	var sum int64
	for _, e := range ents {
		sum += treeDiskBytes(filepath.Join(dir, e.Name()))
		sum += treeDiskBytes(filepath.Join(n.store.Dir(), "items", e.Name()))
	}
	return sum
}

func (n *Node) gwInUse(id string) bool {
	cid, _ := chunker.ParseID(id)
	n.gw.mu.Lock()
	defer n.gw.mu.Unlock()
	e := n.gw.entries[cid]
	return e != nil && e.inUse()
}

func (n *Node) gwCached(id string) bool {
	cid, _ := chunker.ParseID(id)
	n.gw.mu.Lock()
	defer n.gw.mu.Unlock()
	return n.gw.entries[cid] != nil
}

// metricValue reads one metric of the node's /metrics text.
func metricValue(t *testing.T, n *Node, name string) float64 {
	t.Helper()
	var b bytes.Buffer
	if err := n.WriteMetrics(&b); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(b.String())
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// blockingWriter takes the first write, then blocks until release is
// closed: a reader that holds its content open.
type blockingWriter struct {
	buf     bytes.Buffer
	first   chan struct{}
	release chan struct{}
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	if w.buf.Len() == 0 {
		close(w.first)
		<-w.release
	}
	return w.buf.Write(p)
}

// tailBlockingWriter blocks the write that would reach last bytes until
// release is closed: a reader that has read all but holds its content.
type tailBlockingWriter struct {
	buf     bytes.Buffer
	last    int
	reached chan struct{}
	release chan struct{}
}

func (w *tailBlockingWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) >= w.last {
		close(w.reached)
		<-w.release
	}
	return w.buf.Write(p)
}

// TestGatewayCacheBudget: a node whose gateway cache may take 4 MiB reads
// seven contents from a real peer through its HTTP gateway. The cache
// never takes more than 4 MiB on disk (measured by walking it), idle items
// are evicted least recently read first, an item a reader holds is never
// evicted, a read that cannot fit while every item is being read gets 503
// with Retry-After, and once the reader left the same read works; the
// cache's items are listed by Items and removed by Remove; /metrics counts
// evictions and refusals.
func TestGatewayCacheBudget(t *testing.T) {
	const budget = 4 << 20
	pub := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	type content struct {
		id   string
		data []byte
	}
	publish := func(size int, seed uint64) content {
		src, data := randomFile(t, size, seed)
		p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return content{p.Item.ID, data}
	}
	var small []content
	for i := range 6 {
		small = append(small, publish(1<<20, uint64(10+i)))
	}
	big := publish(3<<20+512<<10, 16)

	gw, h, q := cacheNode(t, budget, pub)
	read := func(c content) {
		t.Helper()
		resp, body := h.get(t, "GET", "/shoal/"+c.id+q)
		if resp.StatusCode != 200 || !bytes.Equal(body, c.data) {
			t.Fatalf("GET %s: %d, %d bytes; want 200 with its %d bytes", c.id, resp.StatusCode, len(body), len(c.data))
		}
		waitCond(t, "the gateway released "+c.id, func() bool { return !gw.gwInUse(c.id) })
		if got := gwCacheDisk(t, gw); got > budget {
			t.Fatalf("after reading %s the cache takes %d bytes, over its budget of %d", c.id, got, budget)
		}
	}

	// A reader holds the first content open (shoal cat's path).
	held := small[0]
	read(held)
	w := &blockingWriter{first: make(chan struct{}), release: make(chan struct{})}
	catDone := make(chan error, 1)
	go func() {
		catDone <- gw.Cat(ctx, CatRequest{Link: "shoal:" + held.id + q}, w)
	}()
	select {
	case <-w.first:
	case err := <-catDone:
		t.Fatalf("cat ended before writing: %v", err)
	}
	if !gw.gwInUse(held.id) {
		t.Fatal("the cat's content is not in use")
	}

	// Five more contents of 1 MiB through a 4 MiB cache: idle items go,
	// the held one stays.
	for _, c := range small[1:] {
		read(c)
		if !gw.gwCached(held.id) {
			t.Fatalf("reading %s evicted %s, which a reader holds", c.id, held.id)
		}
	}
	if !gw.gwCached(small[len(small)-1].id) {
		t.Fatal("the latest read is not cached")
	}
	if gw.gwCached(small[1].id) {
		t.Fatal("the least recently read item was kept while newer ones were evicted")
	}
	if v := metricValue(t, gw, "shoal_gateway_cache_evictions_total"); v < 2 {
		t.Fatalf("evictions counted %v, want at least 2", v)
	}

	// 3.5 MiB cannot fit beside the held 1 MiB: 503, and the held item stays.
	resp, _ := h.get(t, "GET", "/shoal/"+big.id+q)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("GET of content that cannot fit: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if !gw.gwCached(held.id) {
		t.Fatal("the refused read evicted the held item")
	}
	if v := metricValue(t, gw, "shoal_gateway_cache_refusals_total"); v < 1 {
		t.Fatalf("refusals counted %v, want at least 1", v)
	}

	// The reader leaves; now the big content fits, evicting what it must.
	close(w.release)
	if err := <-catDone; err != nil || !bytes.Equal(w.buf.Bytes(), held.data) {
		t.Fatalf("cat of the held content: %v, %d bytes", err, w.buf.Len())
	}
	waitCond(t, "the cat released its content", func() bool { return !gw.gwInUse(held.id) })
	read(big)
	if gw.gwCached(held.id) {
		t.Fatal("the oldest idle item survived a read that needed its room")
	}
	if v := metricValue(t, gw, "shoal_gateway_cache_bytes"); v <= 0 || v > budget {
		t.Fatalf("shoal_gateway_cache_bytes %v, want in (0, %d]", v, budget)
	}

	// The cache's items are listed and removable.
	items, err := gw.Items(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found *Item
	for i := range items {
		if items[i].ID == big.id {
			found = &items[i]
		}
	}
	if found == nil || found.Kind != KindCache || found.Cached <= 0 || found.Size != int64(len(big.data)) {
		t.Fatalf("Items lists the big content as %+v, want kind cache with its size and bytes cached", found)
	}
	if _, err := os.Stat(found.Path); err != nil {
		t.Fatalf("listed cache path: %v", err)
	}
	if _, err := gw.Remove(ctx, big.id); err != nil {
		t.Fatalf("Remove of a cache item: %v", err)
	}
	if gw.gwCached(big.id) {
		t.Fatal("Remove left the item in the cache")
	}
	if _, err := os.Stat(filepath.Dir(found.Path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Remove left the item's folder: %v", err)
	}
	if _, err := gw.Remove(ctx, big.id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Remove: %v, want ErrNotFound", err)
	}
}

// TestGatewayCacheSparse: reading the first KiB of a 32 MiB file through
// the gateway caches the chunks fetched (the range and its read-ahead),
// and the cache takes about those bytes on disk, not the file's size.
func TestGatewayCacheSparse(t *testing.T) {
	size := 32 << 20
	pub := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, data := randomFile(t, size, 3)
	p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw := gatewayNode(t)
	h := newHClient(t, gw)
	resp, body := h.get(t, "GET", "/shoal/"+p.Item.ID+"?peer="+pub.PeerID().String()+"@"+pub.Addr().String(), "Range", "bytes=0-1023")
	if resp.StatusCode != 206 || !bytes.Equal(body, data[:1024]) {
		t.Fatalf("range: %d, %d bytes", resp.StatusCode, len(body))
	}
	waitCond(t, "the gateway released the content", func() bool { return !gw.gwInUse(p.Item.ID) })
	// Chunks may still arrive (read-ahead): count them after measuring.
	cs := int64(256 << 10)
	disk := gwCacheDisk(t, gw)
	fetched := gw.gwFetched(p.Item.ID)
	if fetched <= 0 || disk < cs || disk > int64(fetched+1)*cs+256<<10 || disk > int64(size)/2 {
		t.Fatalf("the cache takes %d bytes on disk for %d chunks of %d fetched from a %d-byte file; want about the chunks fetched",
			disk, fetched, cs, size)
	}
	t.Logf("%d chunks fetched, %d bytes on disk, content %d bytes", fetched, disk, size)
}

// TestGatewayCacheCutsOffReader: a reader of content larger than the
// cache's budget, with nothing to evict, gets what fits and then a short
// body; the cache never takes more than the budget, and the next reader
// of other content evicts the idle item.
func TestGatewayCacheCutsOffReader(t *testing.T) {
	const budget = 30 << 20
	size := 40 << 20
	pub := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, data := randomFile(t, size, 4)
	p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src2, data2 := randomFile(t, 2<<20, 5)
	p2, err := pub.Publish(ctx, PublishRequest{Path: src2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw, h, q := cacheNode(t, budget, pub)
	resp, err := h.c.Get(h.base + "/shoal/" + p.Item.ID + q)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body) // ends early: an error or a short body
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) >= size || len(body) == 0 || !bytes.Equal(body, data[:len(body)]) {
		t.Fatalf("GET of content over the budget: %d, %d of %d bytes; want 200 with a verified, short body", resp.StatusCode, len(body), size)
	}
	waitCond(t, "the gateway released the content", func() bool { return !gw.gwInUse(p.Item.ID) })
	if got := gwCacheDisk(t, gw); got > budget {
		t.Fatalf("the cache takes %d bytes, over its budget of %d", got, budget)
	}
	if v := metricValue(t, gw, "shoal_gateway_cache_cutoffs_total"); v < 1 {
		t.Fatalf("cutoffs counted %v, want at least 1", v)
	}
	t.Logf("read %d of %d bytes within a budget of %d", len(body), size, budget)

	// The node's own user (cat, through the authenticated API) is not cut
	// off. While it holds the whole content (over budget), a gateway
	// reader of that content needs no room and is served; once the cat is
	// done, the cache is brought back within budget.
	w := &tailBlockingWriter{last: size, reached: make(chan struct{}), release: make(chan struct{})}
	catDone := make(chan error, 1)
	go func() { catDone <- gw.Cat(ctx, CatRequest{Link: "shoal:" + p.Item.ID + q}, w) }()
	select {
	case <-w.reached:
	case err := <-catDone:
		t.Fatalf("cat ended before its last write: %v", err)
	}
	if got := gwCacheDisk(t, gw); got <= budget {
		t.Fatalf("the cat's whole content takes %d bytes, not over the budget of %d: the test needs it over", got, budget)
	}
	resp3, body3 := h.get(t, "GET", "/shoal/"+p.Item.ID+q)
	if resp3.StatusCode != 200 || !bytes.Equal(body3, data) {
		t.Fatalf("GET of a content the cache holds whole, the cache over budget: %d, %d bytes; want 200 with all", resp3.StatusCode, len(body3))
	}
	close(w.release)
	if err := <-catDone; err != nil || !bytes.Equal(w.buf.Bytes(), data) {
		t.Fatalf("cat of content over the budget: %v, %d of %d bytes", err, w.buf.Len(), size)
	}
	waitCond(t, "the cache is back within its budget after the cat", func() bool { return gwCacheDisk(t, gw) <= budget })

	resp2, body2 := h.get(t, "GET", "/shoal/"+p2.Item.ID+q)
	if resp2.StatusCode != 200 || !bytes.Equal(body2, data2) {
		t.Fatalf("GET of other content after the cutoff: %d, %d bytes", resp2.StatusCode, len(body2))
	}
	waitCond(t, "the gateway released the content", func() bool { return !gw.gwInUse(p2.Item.ID) })
	if got := gwCacheDisk(t, gw); got > budget {
		t.Fatalf("the cache takes %d bytes, over its budget of %d", got, budget)
	}
}

// TestGatewayCacheRestart: a restarted node finds its cache items again
// (listed, read with the publisher gone), and deletes what is inconsistent:
// an item whose output is gone (with its store entry), a folder without a
// store entry, a file of the older layout.
func TestGatewayCacheRestart(t *testing.T) {
	pub := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var ids []string
	var datas [][]byte
	for i := range 3 {
		src, data := randomFile(t, 1<<20, uint64(20+i))
		p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids, datas = append(ids, p.Item.ID), append(datas, data)
	}
	dir := t.TempDir()
	cfg := Config{DataDir: dir, Listen: "127.0.0.1:0", API: "off", Gateway: "127.0.0.1:0"}
	gw, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := newHClient(t, gw)
	q := "?peer=" + pub.PeerID().String() + "@" + pub.Addr().String()
	for i, id := range ids[:2] {
		resp, body := h.get(t, "GET", "/shoal/"+id+q)
		if resp.StatusCode != 200 || !bytes.Equal(body, datas[i]) {
			t.Fatalf("GET %s: %d", id, resp.StatusCode)
		}
	}
	gw.Close()
	pub.Close()

	cache := filepath.Join(dir, gatewayDir)
	broken := mustID(t, ids[1])
	ents, _ := os.ReadDir(filepath.Join(cache, ids[1]))
	for _, e := range ents {
		os.RemoveAll(filepath.Join(cache, ids[1], e.Name())) // its output is gone
	}
	stray := filepath.Join(cache, ids[2])
	os.MkdirAll(stray, 0o755)
	os.WriteFile(filepath.Join(stray, "x"), []byte("x"), 0o644)
	old := filepath.Join(cache, "file20.bin")
	os.WriteFile(old, []byte("older layout"), 0o644)

	gw2, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer gw2.Close()
	for _, p := range []string{stray, old, filepath.Join(cache, ids[1])} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived the restart: %v", p, err)
		}
	}
	if _, err := gw2.store.Info(broken); err == nil {
		t.Error("the broken item's store entry survived the restart")
	}
	items, _ := gw2.Items(ctx)
	if len(items) != 1 || items[0].ID != ids[0] || items[0].Kind != KindCache || items[0].Cached <= 0 {
		t.Fatalf("restarted cache lists %+v, want only %s as kind cache", items, ids[0])
	}
	h2 := newHClient(t, gw2)
	resp, body := h2.get(t, "GET", "/shoal/"+ids[0])
	if resp.StatusCode != 200 || !bytes.Equal(body, datas[0]) {
		t.Fatalf("GET of a cached item with its publisher gone: %d, %d bytes", resp.StatusCode, len(body))
	}
}

// TestGatewayCacheFirstBytesAttack: a client that asks the gateway for the
// first byte of many large contents (the way to fill a node's disk before
// the cache had a budget) leaves the cache within its budget at every
// step, and an honest reader then reads a whole content.
func TestGatewayCacheFirstBytesAttack(t *testing.T) {
	const budget = 20 << 20
	pub := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var ids []string
	for i := range 6 {
		src, _ := randomFile(t, 12<<20, uint64(30+i))
		p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.Item.ID)
	}
	src, honest := randomFile(t, 2<<20, 40)
	hp, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw, h, q := cacheNode(t, budget, pub)
	for _, id := range ids {
		resp, body := h.get(t, "GET", "/shoal/"+id+q, "Range", "bytes=0-0")
		if resp.StatusCode != 206 || len(body) != 1 {
			t.Fatalf("attacker's GET %s: %d, %d bytes", id, resp.StatusCode, len(body))
		}
		waitCond(t, "the gateway released "+id, func() bool { return !gw.gwInUse(id) })
		if got := gwCacheDisk(t, gw); got > budget {
			t.Fatalf("after the first byte of %s the cache takes %d bytes, over its budget of %d", id, got, budget)
		}
	}
	resp, body := h.get(t, "GET", "/shoal/"+hp.Item.ID+q)
	if resp.StatusCode != 200 || !bytes.Equal(body, honest) {
		t.Fatalf("honest GET after the attack: %d, %d bytes", resp.StatusCode, len(body))
	}
	if got := gwCacheDisk(t, gw); got > budget {
		t.Fatalf("the cache takes %d bytes, over its budget of %d", got, budget)
	}
}

// cacheNode starts a node whose gateway caches up to budget bytes, and
// returns it, an HTTP client of its gateway and the query naming pub as
// the peer to fetch from.
func cacheNode(t *testing.T, budget int64, pub *Node) (*Node, *hclient, string) {
	t.Helper()
	gw, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", API: "off", Gateway: "127.0.0.1:0", GatewayCache: budget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	return gw, newHClient(t, gw), "?peer=" + pub.PeerID().String() + "@" + pub.Addr().String()
}
