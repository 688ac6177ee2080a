package seed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
)

// gatewayNode starts a node with its gateway on a free loopback port.
func gatewayNode(t *testing.T, boot ...string) *Node {
	t.Helper()
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", API: "off", Gateway: "127.0.0.1:0", Bootstrap: boot})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	if n.GatewayAddr() == "" {
		t.Fatal("gateway did not start")
	}
	return n
}

func randomFile(t *testing.T, size int, seed uint64) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(data)
	p := filepath.Join(t.TempDir(), fmt.Sprintf("file%d.bin", seed))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, data
}

type hclient struct {
	base string
	c    *http.Client
}

func newHClient(t *testing.T, n *Node) *hclient {
	c := &http.Client{Transport: &http.Transport{}, Timeout: 2 * time.Minute}
	t.Cleanup(c.CloseIdleConnections)
	return &hclient{base: "http://" + n.GatewayAddr(), c: c}
}

func (h *hclient) get(t *testing.T, method, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, path, err)
	}
	return resp, b
}

// fetched returns the chunks the gateway's on-demand download of id has
// fetched so far (-1: no such download).
func (n *Node) gwFetched(id string) int {
	cid, _ := chunker.ParseID(id)
	n.gw.mu.Lock()
	defer n.gw.mu.Unlock()
	if d := n.gw.dls[cid]; d != nil {
		return d.dl.Progress().Fetched
	}
	return -1
}

// TestGatewayStreamsFromAnotherNode: a second node that does not hold a
// 64 MiB file serves a range of it, found through the DHT from the bare ID,
// fetching only the stripes the range needs; then the whole file, HEAD,
// concurrent readers, and the error cases, through a real HTTP client.
func TestGatewayStreamsFromAnotherNode(t *testing.T) {
	size := 64 << 20
	if testing.Short() {
		size = 16 << 20
	}
	pub := startNode(t)
	src, data := randomFile(t, size, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw := gatewayNode(t, pub.Addr().String())
	h := newHClient(t, gw)
	path := "/shoal/" + p.Item.ID

	// A range in the middle, by bare ID (the DHT finds the publisher).
	lo, hi := size/2+12345, size/2+12345+3<<20
	resp, body := h.get(t, "GET", path, "Range", fmt.Sprintf("bytes=%d-%d", lo, hi-1))
	if resp.StatusCode != 206 || !bytes.Equal(body, data[lo:hi]) {
		t.Fatalf("range: %d, %d bytes; want 206 with bytes %d..%d", resp.StatusCode, len(body), lo, hi)
	}
	total := (size + 256<<10 - 1) / (256 << 10)
	if f := gw.gwFetched(p.Item.ID); f <= 0 || f > total/2 {
		t.Fatalf("the range made the gateway fetch %d of %d data chunks; want only the range's stripes and read-ahead", f, total)
	}
	// HEAD, the suffix range, 416.
	resp, _ = h.get(t, "HEAD", path)
	if resp.StatusCode != 200 || resp.ContentLength != int64(size) || resp.Header.Get("ETag") != `"`+p.Item.ID+`"` || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("HEAD: %d, length %d, etag %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("ETag"))
	}
	resp, body = h.get(t, "GET", path, "Range", "bytes=-1000")
	if resp.StatusCode != 206 || !bytes.Equal(body, data[size-1000:]) {
		t.Fatalf("suffix range: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, _ = h.get(t, "GET", path, "Range", fmt.Sprintf("bytes=%d-", size)); resp.StatusCode != 416 {
		t.Fatalf("range past the end: %d, want 416", resp.StatusCode)
	}
	// Concurrent readers of the same content share one download.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			lo := i * size / 4
			resp, body := h.get(t, "GET", path, "Range", fmt.Sprintf("bytes=%d-%d", lo, lo+2<<20-1))
			if resp.StatusCode != 206 || !bytes.Equal(body, data[lo:lo+2<<20]) {
				t.Errorf("reader %d: %d, %d bytes", i, resp.StatusCode, len(body))
			}
		})
	}
	wg.Wait()
	gw.gw.mu.Lock()
	ndl := len(gw.gw.dls)
	gw.gw.mu.Unlock()
	if ndl != 1 {
		t.Fatalf("%d gateway downloads for one content, want 1", ndl)
	}
	// The whole file.
	resp, body = h.get(t, "GET", path)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("whole file: %d, %d bytes", resp.StatusCode, len(body))
	}
	// Errors.
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/shoal/xyz", 400},
		{path + "/other.bin", 404},
		{path + "/../../etc/passwd", 404},
	} {
		if resp, body := h.get(t, "GET", tc.path); resp.StatusCode != tc.code {
			t.Errorf("GET %s: %d %q, want %d", tc.path, resp.StatusCode, body, tc.code)
		}
	}
}

// TestGatewayFolder: a folder's JSON listing and one of its files, through
// a peer hint, from a node that does not hold it; and from the publisher.
func TestGatewayFolder(t *testing.T) {
	pub := gatewayNode(t)
	root := filepath.Join(t.TempDir(), "tree")
	files := writeTree(t, root, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := pub.Publish(ctx, PublishRequest{Path: root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw := gatewayNode(t)
	for name, n := range map[string]*Node{"publisher": pub, "other node": gw} {
		h := newHClient(t, n)
		path := "/shoal/" + p.Item.ID
		q := "?peer=" + pub.PeerID().String() + "@" + pub.Addr().String()
		resp, body := h.get(t, "GET", path+q, "Accept", "application/json")
		var l struct {
			Files []struct {
				Path string `json:"path"`
				Size int64  `json:"size"`
				Mode string `json:"mode"`
			} `json:"files"`
		}
		if err := json.Unmarshal(body, &l); err != nil || resp.StatusCode != 200 || len(l.Files) != len(files) {
			t.Fatalf("%s: listing %d %v: %s", name, resp.StatusCode, err, body)
		}
		for _, f := range l.Files {
			if int64(len(files[f.Path])) != f.Size || f.Mode != "0644" {
				t.Errorf("%s: listing entry %+v; file has %d bytes", name, f, len(files[f.Path]))
			}
		}
		resp, body = h.get(t, "GET", path+"/sub/deep/c.bin"+q)
		if resp.StatusCode != 200 || !bytes.Equal(body, files["sub/deep/c.bin"]) {
			t.Fatalf("%s: file of the folder: %d, %d bytes", name, resp.StatusCode, len(body))
		}
		resp, body = h.get(t, "GET", path+"/sub/b.txt"+q, "Range", "bytes=6-")
		if resp.StatusCode != 206 || !bytes.Equal(body, files["sub/b.txt"][6:]) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("%s: range of a text file: %d %q %s", name, resp.StatusCode, body, resp.Header.Get("Content-Type"))
		}
		if resp, _ := h.get(t, "GET", path+"/sub/missing"+q); resp.StatusCode != 404 {
			t.Fatalf("%s: missing file: %d", name, resp.StatusCode)
		}
	}
}

// TestGatewayStreamsAsVerified: the first bytes of a response arrive while
// most of the range is not fetched yet (the reading node is capped at
// 2 MB/s, the range is 6 MiB).
func TestGatewayStreamsAsVerified(t *testing.T) {
	pub := startNode(t)
	src, data := randomFile(t, 8<<20, 7)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", API: "off", Gateway: "127.0.0.1:0", DownloadLimit: 2_000_000})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	h := newHClient(t, gw)
	req, _ := http.NewRequest("GET", h.base+"/shoal/"+p.Item.ID+"?peer="+pub.PeerID().String()+"@"+pub.Addr().String(), nil)
	req.Header.Set("Range", "bytes=1000-6292455") // 6 MiB
	resp, err := h.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 1000)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	id := mustID(t, p.Item.ID)
	gw.gw.mu.Lock()
	verified := gw.gw.dls[id].dl.Progress().Verified
	gw.gw.mu.Unlock()
	if verified >= 6<<20 {
		t.Fatalf("the first bytes came after %d bytes were verified: not streamed", verified)
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(append(first, rest...), data[1000:6292456]) {
		t.Fatalf("streamed range: %v, %d bytes", err, len(first)+len(rest))
	}
}
