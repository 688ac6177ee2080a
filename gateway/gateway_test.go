package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/gateway"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
)

// memContent is content held in memory; readers may be gated.
type memContent struct {
	m     *chunker.Manifest
	data  []byte
	gate  chan struct{} // if set, reads wait for it to close
	open  *sync.WaitGroup
	ends  chan struct{} // if set, gets a value when a reader is closed
	lastN atomic.Int64  // length asked of the last reader
	opens chan struct{} // if set, gets a value when a reader is made
}

func (c *memContent) Manifest() *chunker.Manifest { return c.m }
func (c *memContent) Close() error {
	if c.open != nil {
		c.open.Done()
	}
	return nil
}
func (c *memContent) NewReader(off, n, _ int64) (io.ReadCloser, error) {
	c.lastN.Store(n)
	if c.opens != nil {
		c.opens <- struct{}{}
	}
	if off < 0 || off+n > int64(len(c.data)) {
		return nil, fmt.Errorf("range %d+%d", off, n)
	}
	return &gatedReader{r: bytes.NewReader(c.data[off : off+n]), gate: c.gate, closed: make(chan struct{}), ends: c.ends}, nil
}

type gatedReader struct {
	r      io.Reader
	gate   chan struct{}
	closed chan struct{}
	once   sync.Once
	ends   chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.gate != nil {
		select {
		case <-g.gate:
		case <-g.closed:
			return 0, io.ErrClosedPipe
		}
	}
	return g.r.Read(p)
}

func (g *gatedReader) Close() error {
	g.once.Do(func() {
		close(g.closed)
		if g.ends != nil {
			g.ends <- struct{}{}
		}
	})
	return nil
}

// memBackend serves fixed contents; an unknown ID waits for the context.
type memBackend struct {
	items map[chunker.ContentID]*memContent
	hints chan []chunker.PeerHint
	open  sync.WaitGroup
	full  chunker.ContentID // Open answers ErrUnavailable for it
}

func (b *memBackend) Open(ctx context.Context, id chunker.ContentID, hints []chunker.PeerHint) (gateway.Content, error) {
	if len(hints) > 0 && b.hints != nil {
		b.hints <- hints
	}
	if id == b.full {
		return nil, fmt.Errorf("%w: the cache is full", gateway.ErrUnavailable)
	}
	c, ok := b.items[id]
	if !ok {
		<-ctx.Done()
		return nil, context.Cause(ctx)
	}
	b.open.Add(1)
	return c, nil
}

// fileContent makes a manifest and data for a single file of size bytes.
func fileContent(name string, size int) (*memContent, chunker.ContentID) {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i/251)
	}
	m := &chunker.Manifest{Name: name, Size: int64(size), ChunkSize: 16 << 10, DataShards: 4, ParityShards: 2, Hash: chunker.HashBLAKE3}
	m.Root[0] = byte(size)
	return &memContent{m: m, data: data}, m.ID()
}

func folderContent() (*memContent, chunker.ContentID) {
	files := []chunker.FileEntry{
		{Path: "a.txt", Size: 5, Mode: chunker.ModeFile},
		{Path: "bin/run.sh", Size: 3, Mode: chunker.ModeExec},
		{Path: "video/clip.mp4", Size: 10, Mode: chunker.ModeFile},
	}
	data := []byte("hello#!\x0a0123456789")
	m := &chunker.Manifest{Name: "stuff", Folder: true, Size: 18, ChunkSize: 16 << 10, DataShards: 4, ParityShards: 2, Hash: chunker.HashBLAKE3, Files: files}
	return &memContent{m: m, data: data}, m.ID()
}

type env struct {
	url string
	be  *memBackend
	cl  *http.Client
}

func start(t *testing.T, cfg gateway.Config, items ...*memContent) *env {
	t.Helper()
	be := &memBackend{items: map[chunker.ContentID]*memContent{}, hints: make(chan []chunker.PeerHint, 4)}
	for _, c := range items {
		be.items[c.m.ID()] = c
		c.open = &be.open
	}
	cfg.Backend = be
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener = ln
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	cl := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		cl.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		be.open.Wait() // every opened content was closed
	})
	return &env{url: "http://" + g.Addr().String(), be: be, cl: cl}
}

func (e *env) do(t *testing.T, method, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

func TestFileAndRanges(t *testing.T) {
	leakcheck.Check(t)
	c, id := fileContent("movie.mp4", 100_000)
	e := start(t, gateway.Config{}, c)
	p := "/shoal/" + id.String()
	tag := `"` + id.String() + `"`

	resp, body := e.do(t, "GET", p)
	if resp.StatusCode != 200 || !bytes.Equal(body, c.data) {
		t.Fatalf("GET: %d, %d bytes; want 200 and the file", resp.StatusCode, len(body))
	}
	for h, want := range map[string]string{"Content-Type": "video/mp4", "ETag": tag, "Accept-Ranges": "bytes", "Content-Length": "100000"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("GET %s: %q, want %q", h, got, want)
		}
	}
	cases := []struct {
		rng, want string
		lo, hi    int // body = data[lo:hi]
	}{
		{"bytes=10-19", "bytes 10-19/100000", 10, 20},
		{"bytes=99990-", "bytes 99990-99999/100000", 99990, 100000},
		{"bytes=-500", "bytes 99500-99999/100000", 99500, 100000},
		{"bytes=99000-200000", "bytes 99000-99999/100000", 99000, 100000},
	}
	for _, tc := range cases {
		resp, body := e.do(t, "GET", p, "Range", tc.rng)
		if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != tc.want || !bytes.Equal(body, c.data[tc.lo:tc.hi]) {
			t.Errorf("Range %s: %d %q, %d bytes; want 206 %q and bytes %d..%d", tc.rng, resp.StatusCode, resp.Header.Get("Content-Range"), len(body), tc.want, tc.lo, tc.hi)
		}
	}
	if resp, _ := e.do(t, "GET", p, "Range", "bytes=100000-"); resp.StatusCode != 416 || resp.Header.Get("Content-Range") != "bytes */100000" {
		t.Errorf("range past the end: %d %q, want 416 bytes */100000", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	resp, body = e.do(t, "HEAD", p)
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != 100000 || resp.Header.Get("ETag") != tag {
		t.Errorf("HEAD: %d, body %d, length %d, etag %q", resp.StatusCode, len(body), resp.ContentLength, resp.Header.Get("ETag"))
	}
	if resp, body := e.do(t, "GET", p, "If-None-Match", tag); resp.StatusCode != 304 || len(body) != 0 {
		t.Errorf("If-None-Match: %d with %d bytes, want 304", resp.StatusCode, len(body))
	}
	// The file's own name after the ID works too (players like a name).
	if resp, body := e.do(t, "GET", p+"/movie.mp4", "Range", "bytes=0-3"); resp.StatusCode != 206 || !bytes.Equal(body, c.data[:4]) {
		t.Errorf("GET /<id>/<name>: %d", resp.StatusCode)
	}
}

func TestFolder(t *testing.T) {
	leakcheck.Check(t)
	c, id := folderContent()
	e := start(t, gateway.Config{}, c)
	p := "/shoal/" + id.String()
	resp, body := e.do(t, "GET", p, "Accept", "application/json")
	var l struct {
		Files []struct {
			Path string `json:"path"`
			Size int64  `json:"size"`
			Mode string `json:"mode"`
		} `json:"files"`
	}
	if err := json.Unmarshal(body, &l); err != nil || resp.StatusCode != 200 {
		t.Fatalf("JSON listing: %d %v: %s", resp.StatusCode, err, body)
	}
	want := fmt.Sprint([]any{"a.txt", 5, "0644", "bin/run.sh", 3, "0755", "video/clip.mp4", 10, "0644"})
	var got []any
	for _, f := range l.Files {
		got = append(got, f.Path, int(f.Size), f.Mode)
	}
	if fmt.Sprint(got) != want {
		t.Errorf("listing %v, want %v", got, want)
	}
	resp, body = e.do(t, "GET", p)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(body), `href="/shoal/`+id.String()+`/video/clip.mp4"`) {
		t.Errorf("HTML listing: %s\n%s", ct, body)
	}
	resp, body = e.do(t, "GET", p+"/bin/run.sh")
	if resp.StatusCode != 200 || string(body) != "#!\n" {
		t.Errorf("file of a folder: %d %q", resp.StatusCode, body)
	}
	resp, body = e.do(t, "GET", p+"/video/clip.mp4", "Range", "bytes=-3")
	if resp.StatusCode != 206 || string(body) != "789" || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Errorf("range of a file of a folder: %d %q %s", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	resp, body = e.do(t, "GET", p+"/video/", "Accept", "application/json")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "clip.mp4") || strings.Contains(string(body), "a.txt") {
		t.Errorf("sub-folder listing: %d %s", resp.StatusCode, body)
	}
}

func TestBadInput(t *testing.T) {
	leakcheck.Check(t)
	c, id := folderContent()
	e := start(t, gateway.Config{FindTimeout: 200 * time.Millisecond}, c)
	p := "/shoal/" + id.String()
	other, otherID := fileContent("x", 10)
	_ = other
	cases := []struct {
		path string
		code int
	}{
		{"/shoal/nothex", 400},
		{"/shoal/" + strings.Repeat("z", 64), 400},
		{p + "/missing.txt", 404},
		{p + "/bin", 200}, // a sub-folder: its listing
		{p + "/../" + id.String(), 404},
		{p + "/bin/../a.txt", 404},
		{p + "/%2e%2e/%2e%2e/etc/passwd", 404},
		{p + "//a.txt", 404},
		{p + "?peer=not-a-hint", 400},
		{"/shoal/" + otherID.String(), 504}, // nobody serves it
		{"/elsewhere", 404},
	}
	for _, tc := range cases {
		resp, body := e.do(t, "GET", tc.path)
		if resp.StatusCode != tc.code {
			t.Errorf("GET %s: %d (%s), want %d", tc.path, resp.StatusCode, strings.TrimSpace(string(body)), tc.code)
		}
		if tc.code >= 400 && len(body) == 0 {
			t.Errorf("GET %s: %d with an empty body", tc.path, resp.StatusCode)
		}
	}
	if resp, _ := e.do(t, "POST", p); resp.StatusCode != 405 {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
	// Peer hints reach the backend.
	hint := strings.Repeat("ab", 32) + "@127.0.0.1:7745"
	if resp, _ := e.do(t, "GET", p+"/a.txt?peer="+hint); resp.StatusCode != 200 {
		t.Errorf("GET with a hint: %d", resp.StatusCode)
	}
	if h := <-e.be.hints; len(h) != 1 || h[0].Addr != "127.0.0.1:7745" || h[0].PeerID != strings.Repeat("ab", 32) {
		t.Errorf("backend got hints %v", h)
	}
}

func TestTooManyReaders(t *testing.T) {
	leakcheck.Check(t)
	c, id := fileContent("f.bin", 1000)
	c.gate = make(chan struct{})
	e := start(t, gateway.Config{MaxReaders: 2}, c)
	p := "/shoal/" + id.String()
	var wg sync.WaitGroup
	started := make(chan struct{}, 2)
	for range 2 {
		wg.Go(func() {
			resp, err := e.cl.Get(e.url + p)
			if err != nil {
				t.Errorf("GET: %v", err)
				return
			}
			started <- struct{}{}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(b, c.data) {
				t.Errorf("blocked reader got %d bytes", len(b))
			}
		})
	}
	<-started
	<-started // both hold a slot: headers are out, bodies wait
	resp, body := e.do(t, "GET", p)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third reader: %d %q, want 503 with Retry-After", resp.StatusCode, body)
	}
	close(c.gate)
	wg.Wait()
	if resp, _ := e.do(t, "GET", p); resp.StatusCode != 200 {
		t.Errorf("after the readers left: %d, want 200", resp.StatusCode)
	}
}

// A client that goes away while its read waits for bytes releases the
// reader at once (its priority in the download goes with it).
func TestClientLeavingReleasesReader(t *testing.T) {
	leakcheck.Check(t)
	c, id := fileContent("f.bin", 1000)
	c.gate = make(chan struct{}) // never opened: the bytes never come
	c.ends = make(chan struct{}, 1)
	c.opens = make(chan struct{}, 1)
	e := start(t, gateway.Config{}, c)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/shoal/"+id.String(), nil)
	resp, err := e.cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != 1000 {
		t.Fatalf("headers: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	<-c.opens // the handler waits in the reader's Read
	cancel()
	resp.Body.Close()
	select {
	case <-c.ends:
	case <-time.After(10 * time.Second):
		t.Fatal("the reader was not closed after the client left")
	}
}

// A single range makes a reader that stops at the range's end.
func TestRangeBoundsReader(t *testing.T) {
	leakcheck.Check(t)
	c, id := fileContent("f.bin", 100_000)
	e := start(t, gateway.Config{}, c)
	resp, body := e.do(t, "GET", "/shoal/"+id.String(), "Range", "bytes=500-1499")
	if resp.StatusCode != 206 || !bytes.Equal(body, c.data[500:1500]) {
		t.Fatalf("range: %d, %d bytes", resp.StatusCode, len(body))
	}
	if n := c.lastN.Load(); n != 1000 {
		t.Fatalf("reader opened for %d bytes, want the range's 1000", n)
	}
}

// FuzzPath: any request path gets an answer from a small set, never a
// panic, and never a file that is not in the content.
func FuzzPath(f *testing.F) {
	c, id := folderContent()
	for _, s := range []string{"/shoal/" + id.String() + "/a.txt", "/shoal/" + id.String() + "/../x", "/shoal/x", "/shoal/" + id.String() + "/bin/", "/%2e%2e/"} {
		f.Add(s, "bytes=0-1")
	}
	be := &memBackend{items: map[chunker.ContentID]*memContent{id: c}}
	c.open = &be.open
	g, err := gateway.New(gateway.Config{Backend: be, Listener: nopListener{}, FindTimeout: time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	h := g.Handler()
	f.Fuzz(func(t *testing.T, p, rng string) {
		req, err := http.NewRequest("GET", "http://x", nil)
		if err != nil {
			return
		}
		req.URL.Path = "/" + strings.TrimPrefix(p, "/")
		req.Header.Set("Range", rng)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 206, 301, 400, 404, 416, 504:
		default:
			t.Fatalf("GET %q (Range %q): %d", p, rng, rec.Code)
		}
		if rec.Code == 200 || rec.Code == 206 {
			if body := rec.Body.String(); rec.Header().Get("Content-Type") != "text/html; charset=utf-8" && !strings.Contains(string(c.data), body) {
				t.Fatalf("GET %q: body %q is not in the content", p, body)
			}
		}
	})
}

type nopListener struct{}

func (nopListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (nopListener) Close() error              { return nil }
func (nopListener) Addr() net.Addr            { return &net.TCPAddr{} }

// TestUnavailableIs503: a backend that cannot serve now (its cache is full
// of content being read) makes a 503 with Retry-After and its reason.
func TestUnavailableIs503(t *testing.T) {
	_, id := fileContent("x.bin", 1000)
	e := start(t, gateway.Config{})
	e.be.full = id
	resp, body := e.do(t, "GET", "/shoal/"+id.String())
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != strconv.Itoa(gateway.RetryAfter) || !strings.Contains(string(body), "cache is full") {
		t.Fatalf("got %d, Retry-After %q, body %q; want 503 with Retry-After %d", resp.StatusCode, resp.Header.Get("Retry-After"), body, gateway.RetryAfter)
	}
}
