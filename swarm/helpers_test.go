package swarm_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/swarm"
)

// tpeer is one real node: an overlay node on 127.0.0.1 with a swarm server
// and a chunk store in a temporary folder.
type tpeer struct {
	node  *overlay.Node
	srv   *swarm.Server
	store *chunker.Store
	dir   string
	ran   chan struct{} // closed when node.Run has returned
}

func newPeer(t testing.TB, scfg swarm.ServerConfig) *tpeer {
	t.Helper()
	dir := t.TempDir()
	st, err := chunker.OpenStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	n, err := overlay.New(overlay.Config{})
	if err != nil {
		t.Fatalf("overlay.New: %v", err)
	}
	srv := swarm.NewServer(scfg)
	n.Handle(swarm.Tag, func(ctx context.Context, c *overlay.Conn, s *quic.Stream) {
		srv.ServeStream(ctx, c.PeerID(), s)
	})
	p := &tpeer{node: n, srv: srv, store: st, dir: dir, ran: make(chan struct{})}
	go func() { defer close(p.ran); n.Run(context.Background()) }() // until close
	t.Cleanup(p.close)
	return p
}

// close stops the node and the server; it is idempotent.
func (p *tpeer) close() {
	p.node.Close()
	<-p.ran
	p.srv.Close()
}

func (p *tpeer) id() identity.PeerID  { return p.node.PeerID() }
func (p *tpeer) addr() netip.AddrPort { return p.node.LocalAddr() }
func (p *tpeer) dialer() swarm.Dialer { return nodeDialer(p.node) }

// item opens p's published copy of c, closed when the test ends.
func (p *tpeer) item(t *testing.T, c content) *chunker.Item {
	t.Helper()
	it, err := p.store.Open(c.id)
	if err != nil {
		t.Fatalf("opening %s: %v", c.id, err)
	}
	t.Cleanup(func() { it.Close() })
	return it
}

func nodeDialer(n *overlay.Node) swarm.Dialer {
	return swarm.DialerFunc(func(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (swarm.Stream, error) {
		s, err := n.OpenStream(ctx, peer, addr, swarm.Tag)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}

// content is a published test file.
type content struct {
	id   chunker.ContentID
	data []byte
	man  *chunker.Manifest
}

// testOpts: 16 KiB chunks, 4+2 stripes, so a few MiB make hundreds of
// chunks and dozens of stripes.
var testOpts = chunker.PublishOptions{ChunkSize: 16 << 10, DataShards: 4, ParityShards: 2}

// publish writes size random bytes into p's folder, publishes them into
// p's store and seeds them from p's server.
func publish(t *testing.T, p *tpeer, size int, seed uint64) content {
	t.Helper()
	return publishWith(t, p, size, seed, testOpts)
}

// publishWith is publish with other chunking options.
func publishWith(t *testing.T, p *tpeer, size int, seed uint64, opts chunker.PublishOptions) content {
	t.Helper()
	data := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	rng.Read(data)
	path := filepath.Join(p.dir, "file.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	pub, err := chunker.Publish(context.Background(), p.store, path, opts)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	it, err := p.store.Open(pub.ID)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { it.Close() })
	p.srv.Seed(pub.ID, swarm.ItemSource(it))
	return content{id: pub.ID, data: data, man: pub.Manifest}
}

// seedPart makes p hold only the chunks keep selects, copied from the full
// item of src, and serve them.
func seedPart(t *testing.T, p, src *tpeer, c content, keep func(i int) bool) {
	t.Helper()
	full := src.item(t, c)
	if err := os.MkdirAll(filepath.Join(p.dir, "part"), 0o755); err != nil {
		t.Fatal(err)
	}
	dl, err := p.store.CreateDownload(c.man, full.Leaves(), filepath.Join(p.dir, "part"), chunker.DownloadOptions{})
	if err != nil {
		t.Fatalf("CreateDownload: %v", err)
	}
	t.Cleanup(func() { dl.Close() })
	for i := range c.man.NumChunks() {
		if !keep(i) {
			continue
		}
		b, err := full.ReadChunk(i, nil)
		if err != nil {
			t.Fatalf("ReadChunk(%d): %v", i, err)
		}
		if err := dl.WriteChunk(i, b); err != nil {
			t.Fatalf("WriteChunk(%d): %v", i, err)
		}
	}
	p.srv.Seed(c.id, swarm.DownloadSource(dl))
}

// startDownload makes a download of c on p (serving what it verifies) with
// the given sources, runs it and returns a channel with Run's result.
func startDownload(ctx context.Context, t *testing.T, p *tpeer, c content, cfg swarm.Config, from ...*tpeer) (*swarm.Download, <-chan error) {
	t.Helper()
	if cfg.Server == nil {
		cfg.Server = p.srv
	}
	d, err := swarm.NewDownload(cfg, p.dialer(), p.store, c.id, filepath.Join(p.dir, "out"))
	if err != nil {
		t.Fatalf("NewDownload: %v", err)
	}
	for _, f := range from {
		d.AddPeer(f.id(), f.addr())
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { d.Close() })
	return d, done
}

// checkOutput compares p's downloaded file with c.
func checkOutput(t *testing.T, p *tpeer, c content) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(p.dir, "out", c.man.Name))
	if err != nil {
		t.Fatalf("reading output: %v", err)
	}
	if !bytes.Equal(got, c.data) {
		i := 0
		for i < len(got) && i < len(c.data) && got[i] == c.data[i] {
			i++
		}
		t.Fatalf("output differs from the published file at byte %d (len %d, want %d)", i, len(got), len(c.data))
	}
}

// waitRun waits for a Run result.
func waitRun(t *testing.T, name string, done <-chan error, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: Run = %v, want nil", name, err)
		}
	case <-time.After(timeout):
		t.Fatalf("%s: Run did not finish within %v", name, timeout)
	}
}

// waitRunning waits up to 30 s until cond returns nil while Run (which
// sends its result on done) is still running: a Run that returns first
// fails the test, since the state awaited is one of a running download.
func waitRunning(t testing.TB, done <-chan error, what string, cond func() error) {
	t.Helper()
	var ended error
	testwait.Eventually(t, 30*time.Second, what, func() error {
		select {
		case err := <-done:
			ended = fmt.Errorf("Run returned %v", err)
		default:
		}
		if ended != nil {
			return ended
		}
		return cond()
	})
}
