package seed

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/testwait"
)

// TestGetOnlyFetchesOnlyMatchingFiles: get --only writes the matching files
// of a folder and fetches no chunk that lies wholly in another file (the
// chunks the node holds afterwards are counted).
func TestGetOnlyFetchesOnlyMatchingFiles(t *testing.T) {
	pub := startNode(t)
	root := filepath.Join(t.TempDir(), "album")
	sizes := map[string]int{"keep/a.bin": 5<<20 + 3, "keep/c.txt": 100 << 10, "skip/b.bin": 6 << 20, "skip/d.bin": 3<<20 + 9}
	files := map[string][]byte{}
	rng := rand.New(rand.NewPCG(5, 5))
	for p, n := range sizes {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		files[p] = b
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := pub.Publish(ctx, PublishRequest{Path: root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := startNode(t)
	out := t.TempDir()
	res, err := g.GetOnly(ctx, GetOnlyRequest{Link: p.Link, Out: out, Only: []string{"keep/*"}}, nil)
	if err != nil {
		t.Fatalf("GetOnly: %v", err)
	}
	if len(res.Files) != 2 {
		t.Fatalf("wrote %v, want the two keep/ files", res.Files)
	}
	for name, b := range files {
		got, err := os.ReadFile(filepath.Join(out, "album", name))
		if strings.HasPrefix(name, "keep/") {
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("%s: %v, %d bytes; want the published file", name, err, len(got))
			}
		} else if err == nil {
			t.Fatalf("%s was written; --only keep/* must not write it", name)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "album", "skip")); err == nil {
		t.Fatalf("the skip/ folder exists")
	}
	// Count the chunks the node fetched, by where their bytes lie.
	id, _ := chunker.ParseID(p.Item.ID)
	g.gw.mu.Lock()
	d := g.gw.dls[id]
	g.gw.mu.Unlock()
	if d == nil {
		t.Fatal("no on-demand download")
	}
	dl := d.dl.Chunker()
	m := dl.Manifest()
	keepEnd := int64(sizes["keep/a.bin"] + sizes["keep/c.txt"]) // keep/ files come first
	have := dl.Have()
	kept, other, parity := 0, 0, 0
	for i := range m.NumChunks() {
		if !have.Has(i) {
			continue
		}
		off := m.DataChunkOffset(i)
		switch {
		case off < 0:
			parity++
		case off < keepEnd:
			kept++
		default:
			other++
		}
	}
	wantKept := int((keepEnd + int64(m.ChunkSize) - 1) / int64(m.ChunkSize))
	t.Logf("chunks held: %d of the matching files (need %d), %d others, %d parity; %d in all", kept, wantKept, other, parity, m.NumChunks())
	if other != 0 || kept != wantKept {
		t.Fatalf("fetched %d chunks of other files and %d of the matching ones; want 0 and %d", other, kept, wantKept)
	}
	// Again: the files exist, nothing is overwritten.
	if _, err := g.GetOnly(ctx, GetOnlyRequest{Link: p.Link, Out: out, Only: []string{"keep/c.txt"}}, nil); !errors.Is(err, ErrOutputExist) {
		t.Fatalf("second GetOnly: %v, want ErrOutputExist", err)
	}
	if _, err := g.GetOnly(ctx, GetOnlyRequest{Link: p.Link, Out: out, Only: []string{"nothing*"}}, nil); !errors.Is(err, ErrNoMatch) {
		t.Fatalf("GetOnly of no file: %v, want ErrNoMatch", err)
	}
}

// TestListAndCatOverAPI: ls fetches the manifest only; cat streams a range
// of a file of a folder; both through the control API's client.
func TestListAndCatOverAPI(t *testing.T) {
	pub := startNode(t)
	root := filepath.Join(t.TempDir(), "tree")
	files := writeTree(t, root, 9)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := pub.Publish(ctx, PublishRequest{Path: root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := startNode(t)
	c, err := Dial(ctx, g.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.List(ctx, p.Link)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if !l.Folder || len(l.Files) != len(files) || l.Name != "tree" {
		t.Fatalf("listing %+v", l)
	}
	for _, f := range l.Files {
		if int64(len(files[f.Path])) != f.Size {
			t.Fatalf("listing entry %+v; file has %d bytes", f, len(files[f.Path]))
		}
	}
	if m := g.heldManifest(mustID(t, p.Item.ID)); m != nil {
		t.Fatalf("ls started a download")
	}
	var buf bytes.Buffer
	if err := c.Cat(ctx, CatRequest{Link: p.Link, Path: "a.bin", Offset: 1000, Length: 2 << 20}, &buf); err != nil {
		t.Fatalf("Cat: %v", err)
	}
	if want := files["a.bin"][1000 : 1000+2<<20]; !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("cat returned %d bytes, not the range", buf.Len())
	}
	buf.Reset()
	if err := c.Cat(ctx, CatRequest{Link: p.Link, Path: "sub/b.txt"}, &buf); err != nil || !bytes.Equal(buf.Bytes(), files["sub/b.txt"]) {
		t.Fatalf("Cat of a whole small file: %v, %q", err, buf.Bytes())
	}
	if err := c.Cat(ctx, CatRequest{Link: p.Link, Path: "nope"}, &buf); err == nil || !strings.Contains(err.Error(), "not in") {
		t.Fatalf("Cat of a missing file: %v", err)
	}
	buf.Reset()
	if err := c.Cat(ctx, CatRequest{Link: p.Link, Path: "a.bin", Offset: -100}, &buf); err != nil || !bytes.Equal(buf.Bytes(), files["a.bin"][len(files["a.bin"])-100:]) {
		t.Fatalf("Cat of the last 100 bytes: %v, %d bytes", err, buf.Len())
	}
	if err := c.Control(ctx, strings.Repeat("x", 5), ControlRequest{Action: "pause"}); err == nil {
		t.Fatalf("pausing an unknown download succeeded")
	}
}

func mustID(t *testing.T, s string) chunker.ContentID {
	id, err := chunker.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDownloadControls: pause, rate, resume and cancel reach a get in
// progress; cancel ends it and forgets it.
func TestDownloadControls(t *testing.T) {
	pub := startNode(t)
	src, _ := randomFile(t, 8<<20, 4)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", API: "off", Gateway: "off", DownloadLimit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	out := t.TempDir()
	done := make(chan error, 1)
	go func() {
		_, err := g.Get(ctx, GetRequest{Link: p.Link, Out: out}, nil)
		done <- err
	}()
	for st, _ := g.Status(ctx); len(st.Downloads) == 0; st, _ = g.Status(ctx) {
		select {
		case err := <-done:
			t.Fatalf("Get ended early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	id := p.Item.ID
	// Listed while it still searches, a download answers ErrBusy ("still
	// starting; try again in a moment") until its swarm runs: ask again
	// then, and only then.
	var pauseErr error
	if err := testwait.Poll(10*time.Second, func() error {
		pauseErr = g.Control(ctx, id, ControlRequest{Action: "pause"})
		if errors.Is(pauseErr, ErrBusy) {
			return pauseErr
		}
		return nil
	}); err != nil || pauseErr != nil {
		t.Fatalf("pause: %v %v", err, pauseErr)
	}
	for _, req := range []ControlRequest{{Action: "rate", Rate: 512 << 10}, {Action: "resume"}} {
		if err := g.Control(ctx, id, req); err != nil {
			t.Fatalf("%+v: %v", req, err)
		}
	}
	if err := g.Control(ctx, id, ControlRequest{Action: "jump"}); err == nil {
		t.Fatalf("an unknown action succeeded")
	}
	if err := g.Control(ctx, id, ControlRequest{Action: "cancel"}); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if err := <-done; err == nil {
		t.Fatalf("a cancelled Get returned nil")
	}
	if items, _ := g.Items(ctx); len(items) != 0 {
		t.Fatalf("library after cancel: %+v", items)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("the output folder holds %v after cancel; want nothing (no partial)", ents)
	}
	if err := g.Control(ctx, id, ControlRequest{Action: "pause"}); !errors.Is(err, ErrNotActive) {
		t.Fatalf("pause after cancel: %v, want ErrNotActive", err)
	}
}
