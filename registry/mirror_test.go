package registry_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	mrand "math/rand"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/seed"
)

func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m, "shoal-p2p/shoal/")) }

// upstream is go-containerregistry's in-process registry behind a counter
// of blob GETs by digest.
type upstream struct {
	srv  *httptest.Server
	host string
	mu   sync.Mutex
	gets map[string]int
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{gets: map[string]int{}}
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if i := strings.Index(r.URL.Path, "/blobs/sha256:"); i >= 0 && r.Method == http.MethodGet {
			u.mu.Lock()
			u.gets[r.URL.Path[i+len("/blobs/"):]]++
			u.mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	u.host = strings.TrimPrefix(u.srv.URL, "http://")
	return u
}

func (u *upstream) count(d string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.gets[d]
}

// pushImage pushes a random image of layers layers of size bytes each as
// repo:tag and returns it.
func pushImage(t *testing.T, host, repo string, size, layers int64, seed int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers, random.WithSource(mrand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("pushing to the upstream: %v", err)
	}
	return img
}

// startMirror starts a node serving a mirror of up, joined to boot.
func startMirror(t *testing.T, upHost, dataDir string, boot ...*seed.Node) *seed.Node {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	cfg := seed.Config{DataDir: dataDir, Listen: "127.0.0.1:0", API: "off",
		Registry: "127.0.0.1:0", RegistryUpstream: "http://" + upHost}
	for _, b := range boot {
		cfg.Bootstrap = append(cfg.Bootstrap, b.Addr().String())
	}
	n, err := seed.Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	if len(boot) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var addrs []netip.AddrPort
		for _, b := range boot {
			addrs = append(addrs, b.Addr())
		}
		if err := n.BootstrapDHT(ctx, addrs); err != nil {
			t.Fatalf("joining the DHT: %v", err)
		}
	}
	return n
}

// pull pulls repo:tag through the mirror of n with go-containerregistry's
// client and returns the image's digest and its layers' digests, each
// layer read whole and hashed.
func pull(ctx context.Context, n *seed.Node, repo string) (string, []string, error) {
	ref, err := name.ParseReference(n.RegistryAddr()+"/"+repo, name.Insecure)
	if err != nil {
		return "", nil, err
	}
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		return "", nil, err
	}
	dg, err := img.Digest()
	if err != nil {
		return "", nil, err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return "", nil, fmt.Errorf("config: %w", err)
	}
	ls, err := img.Layers()
	if err != nil {
		return "", nil, err
	}
	var out []string
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			return "", nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return "", nil, fmt.Errorf("reading a layer: %w", err)
		}
		out = append(out, "sha256:"+hex.EncodeToString(h.Sum(nil)))
	}
	return dg.String(), out, nil
}

func layerDigests(t *testing.T, img v1.Image) (string, []string) {
	t.Helper()
	dg, _ := img.Digest()
	ls, _ := img.Layers()
	var out []string
	for _, l := range ls {
		d, _ := l.Digest()
		out = append(out, d.String())
	}
	cfg, _ := img.ConfigName()
	return dg.String(), append(out, cfg.String())
}

// TestPullThroughSwarm: one node pulls an image of 4 layers through its
// mirror, then three more pull it at once through theirs. Every pull gets
// the pushed digests, and the upstream serves each layer at most twice in
// all (once to the first node; the rest come from peers).
func TestPullThroughSwarm(t *testing.T) {
	up := newUpstream(t)
	img := pushImage(t, up.host, "shoal/app:v1", 1<<20, 4, 1)
	wantDigest, blobs := layerDigests(t, img)
	layers := blobs[:len(blobs)-1]

	first := startMirror(t, up.host, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dg, got, err := pull(ctx, first, "shoal/app:v1")
	if err != nil {
		t.Fatalf("first pull: %v", err)
	}
	if dg != wantDigest || strings.Join(got, ",") != strings.Join(layers, ",") {
		t.Fatalf("first pull: image %s layers %v, want %s %v", dg, got, wantDigest, layers)
	}
	for _, l := range layers {
		if c := up.count(l); c != 1 {
			t.Fatalf("after the first pull the upstream served %s %d times, want 1", l, c)
		}
	}

	var rest []*seed.Node
	for range 3 {
		rest = append(rest, startMirror(t, up.host, "", first))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(rest))
	for i, n := range rest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dg, got, err := pull(ctx, n, "shoal/app:v1")
			if err == nil && (dg != wantDigest || strings.Join(got, ",") != strings.Join(layers, ",")) {
				err = fmt.Errorf("image %s layers %v, want %s %v", dg, got, wantDigest, layers)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pull %d of 3: %v", i+1, err)
		}
	}
	total := 0
	for _, l := range layers {
		c := up.count(l)
		total += c
		if c > 2 {
			t.Errorf("the upstream served layer %s %d times, want at most 2", l, c)
		}
	}
	t.Logf("upstream blob GETs for %d layers pulled by 4 nodes: %d", len(layers), total)
	// The three later nodes fetched from peers, not the upstream.
	var fromPeers float64
	for _, n := range rest {
		fromPeers += scrape(t, n, "shoal_registry_peer_bytes_total")
	}
	if fromPeers == 0 {
		t.Errorf("shoal_registry_peer_bytes_total is 0 on every later node: nothing came from peers")
	}
}

// scrape returns the value of one metric line of the node's /metrics.
func scrape(t *testing.T, n *seed.Node, metric string) float64 {
	t.Helper()
	var sb strings.Builder
	if err := n.WriteMetrics(&sb); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(sb.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, metric+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	t.Fatalf("metrics lack %s:\n%s", metric, sb.String())
	return 0
}

// TestWrongMappingPenalised: a peer announces a layer's digest but maps it
// to other content of the same size. The client still gets the right
// layer (from the upstream), and the liar is penalised.
func TestWrongMappingPenalised(t *testing.T) {
	up := newUpstream(t)
	img := pushImage(t, up.host, "shoal/app:v1", 512<<10, 2, 2)
	_, blobs := layerDigests(t, img)
	ls, _ := img.Layers()
	target := blobs[0]
	size, _ := ls[0].Size()

	// The liar publishes random bytes of the layer's size, then claims in
	// its mirror's index that they are the layer.
	liarDir := t.TempDir()
	liar := startMirror(t, up.host, liarDir)
	fake := filepath.Join(t.TempDir(), "fake")
	b := make([]byte, size)
	mrand.New(mrand.NewSource(9)).Read(b)
	os.WriteFile(fake, b, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, err := liar.Publish(ctx, seed.PublishRequest{Path: fake}, nil)
	if err != nil {
		t.Fatal(err)
	}
	liar.Close()
	id := strings.TrimPrefix(pub.Item.ID, "")
	cid, err := parseContentHex(id)
	if err != nil {
		t.Fatal(err)
	}
	entry, _ := json.Marshal(map[string]any{"content": cid, "path": fake, "size": size})
	os.WriteFile(filepath.Join(liarDir, "registry", "index", strings.TrimPrefix(target, "sha256:")), entry, 0o600)
	liar = startMirror(t, up.host, liarDir)

	honest := startMirror(t, up.host, "", liar)
	// Wait until the liar's announcement is findable, so the honest node
	// meets the lie rather than missing it.
	waitProvider(t, ctx, honest, target)
	got, err := getBlob(ctx, honest, "shoal/app", target)
	if err != nil {
		t.Fatal(err)
	}
	if g := "sha256:" + hex.EncodeToString(sha(got)); g != target {
		t.Fatalf("client got a blob hashing to %s, want %s", g, target)
	}
	if p := honest.Mirror().Penalised(); p != 1 {
		t.Fatalf("liar penalised %d times, want 1", p)
	}
	if v := scrape(t, honest, `shoal_bans_total{reason="bad_mapping"}`); v != 1 {
		t.Fatalf(`shoal_bans_total{reason="bad_mapping"} = %v, want 1`, v)
	}
	if c := up.count(target); c != 1 {
		t.Fatalf("upstream served the layer %d times, want 1 (the fallback)", c)
	}
}

func sha(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// parseContentHex turns a printed content ID into the hex the index keeps.
func parseContentHex(id string) (string, error) {
	cid, err := chunker.ParseID(id)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(cid[:]), nil
}

func waitProvider(t *testing.T, ctx context.Context, n *seed.Node, digest string) {
	t.Helper()
	var d [32]byte
	hex.Decode(d[:], []byte(strings.TrimPrefix(digest, "sha256:")))
	for ctx.Err() == nil {
		if ps := n.Mirror().Providers(ctx, d); len(ps) > 0 {
			return
		}
	}
	t.Fatalf("no provider of %s found in the DHT", digest)
}

func getBlob(ctx context.Context, n *seed.Node, repo, digest string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.RegistryAddr()+"/v2/"+repo+"/blobs/"+digest, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET blob: %s: %s", resp.Status, b)
	}
	return b, err
}
