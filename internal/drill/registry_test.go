//go:build linux

package drill

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// The registry drills: Debian's docker-registry (distribution 2.8) as the
// upstream on host 0, shoal nodes with a registry mirror on 127.0.0.1:5000
// inside each other host, and Debian's skopeo pulling through them. The
// upstream's own access log counts what it served.

// needRegistryTools installs docker-registry and skopeo if they are
// missing, or skips the test.
func needRegistryTools(t *testing.T) {
	t.Helper()
	missing := func() bool {
		for _, c := range []string{"docker-registry", "skopeo"} {
			if _, err := exec.LookPath(c); err != nil {
				return true
			}
		}
		return false
	}
	if !missing() {
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("registry drills need docker-registry and skopeo (apt-get install docker-registry skopeo, as root)")
	}
	install := func() error {
		c := exec.Command("apt-get", "install", "-y", "docker-registry", "skopeo")
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return c.Run()
	}
	if install() != nil {
		exec.Command("apt-get", "update").Run()
		install()
	}
	if missing() {
		t.Skip("registry drills need docker-registry and skopeo, and apt-get could not install them")
	}
}

// upstreamRegistry runs docker-registry on h:5000 and parses its access log.
type upstreamRegistry struct {
	addr string
	log  *syncBuffer
}

func startUpstreamRegistry(t *testing.T, h *Host, dir string) *upstreamRegistry {
	t.Helper()
	cfg := filepath.Join(dir, "registry.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s:5000
`, filepath.Join(dir, "registry-data"), h.Addr)), 0o644)
	u := &upstreamRegistry{addr: fmt.Sprintf("%s:5000", h.Addr), log: &syncBuffer{}}
	c := h.Command("docker-registry", "serve", cfg)
	c.Stdout, c.Stderr = u.log, u.log
	if err := c.Start(); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	go c.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if _, err := h.Command("skopeo", "--version").Output(); err != nil {
			t.Fatalf("skopeo: %v", err)
		}
		cl := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialIn(ctx, h.NS, addr)
		}}}
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+u.addr+"/v2/", nil)
		if resp, err := cl.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return u
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("docker-registry did not answer on %s: %s", u.addr, u.log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// accessRE matches the access log's request lines: method, path, status,
// bytes.
var accessRE = regexp.MustCompile(`"(GET|HEAD) (/v2/[^ ?"]*)[^"]*" (\d{3}) (\d+)`)

// served returns the GETs of each blob and the bytes of every GET answered.
func (u *upstreamRegistry) served() (gets map[string]int, bytes int64) {
	gets = map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(u.log.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := accessRE.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != "GET" {
			continue
		}
		n, _ := strconv.ParseInt(m[4], 10, 64)
		bytes += n
		if i := strings.Index(m[2], "/blobs/"); i >= 0 && m[3] == "200" {
			gets[m[2][i+len("/blobs/"):]]++
		}
	}
	return gets, bytes
}

// testImage writes an OCI layout holding one random image of layers layers
// of size bytes each, with OCI media types (so skopeo copies it as is).
func testImage(t *testing.T, dir string, size, layers int64) (v1.Image, string) {
	t.Helper()
	img, err := random.Image(size, layers, random.WithSource(rand.NewSource(7)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(filepath.Join(dir, "oci"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	return img, filepath.Join(dir, "oci")
}

// skopeoPull copies the image from registry (seen from h) into
// a dir: folder, and checks it: the manifest's digest, and every file named
// by a digest hashing to it. It returns the manifest's digest.
func skopeoPull(ctx context.Context, h *Host, registry, out string) (string, error) {
	c := h.Command("skopeo", "copy", "--insecure-policy", "--src-tls-verify=false", "--retry-times", "2",
		"docker://"+registry+"/shoal/app:v1", "dir:"+out)
	var stderr strings.Builder
	c.Stderr = &stderr
	done := make(chan error, 1)
	if err := c.Start(); err != nil {
		return "", err
	}
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return "", fmt.Errorf("skopeo in %s: %v: %s", h.NS, err, stderr.String())
		}
	case <-ctx.Done():
		c.Process.Kill()
		<-done
		return "", fmt.Errorf("skopeo in %s: %w", h.NS, ctx.Err())
	}
	ents, err := os.ReadDir(out)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		if len(e.Name()) != 64 {
			continue
		}
		if got := fileSHA256(filepath.Join(out, e.Name())); got != e.Name() {
			return "", fmt.Errorf("%s: blob %s hashes to %s", h.NS, e.Name(), got)
		}
	}
	return "sha256:" + fileSHA256(filepath.Join(out, "manifest.json")), nil
}

func fileSHA256(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

type registryStage struct {
	nt    *Net
	hs    []*Host
	up    *upstreamRegistry
	img   v1.Image
	want  string   // manifest digest
	blobs []string // layer digests
	total int64    // bytes of manifest, config and layers
	bin   string
	dir   string
}

func setRegistryStage(t *testing.T, hosts int, size, layers int64, hostRate int64) *registryStage {
	t.Helper()
	needRegistryTools(t)
	s := &registryStage{bin: Binary(t), nt: New(t, hosts+1), dir: t.TempDir()}
	s.hs = s.nt.Hosts()
	s.up = startUpstreamRegistry(t, s.hs[0], s.dir)
	var src string
	s.img, src = testImage(t, s.dir, size, layers)
	push := s.hs[0].Command("skopeo", "copy", "--insecure-policy", "--dest-tls-verify=false", "oci:"+src, "docker://"+s.up.addr+"/shoal/app:v1")
	if out, err := push.CombinedOutput(); err != nil {
		t.Fatalf("pushing the image with skopeo: %v: %s", err, out)
	}
	dg, _ := s.img.Digest()
	s.want = dg.String()
	raw, _ := s.img.RawManifest()
	s.total = int64(len(raw))
	ls, _ := s.img.Layers()
	for _, l := range ls {
		d, _ := l.Digest()
		n, _ := l.Size()
		s.blobs = append(s.blobs, d.String())
		s.total += n
	}
	cfg, _ := s.img.RawConfigFile()
	s.total += int64(len(cfg))
	if err := s.hs[0].Shape(0, hostRate); err != nil {
		t.Fatal(err)
	}
	for _, h := range s.hs[1:] {
		if err := h.Shape(hostRate, hostRate); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// startMirrorNode starts shoal node with a registry mirror in h.
func (s *registryStage) startMirrorNode(t *testing.T, h *Host, boot []string) *Node {
	t.Helper()
	cfg := filepath.Join(s.dir, fmt.Sprintf("config-%d.json", h.Index))
	b, _ := json.Marshal(map[string]any{"registry": "127.0.0.1:5000", "registry_upstream": "http://" + s.up.addr})
	os.WriteFile(cfg, b, 0o644)
	return StartNode(t, s.bin, h, s.dir, NodeOptions{Bootstrap: boot, Env: []string{"SHOAL_CONFIG=" + cfg}})
}

// pullAll pulls through every node's mirror at once (or, with direct,
// from the upstream itself) and returns each pull's duration.
func (s *registryStage) pullAll(ctx context.Context, t *testing.T, nodes []*Node, direct bool) []time.Duration {
	t.Helper()
	took := make([]time.Duration, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			reg, out := "127.0.0.1:5000", filepath.Join(n.Home, "pulled")
			if direct {
				reg, out = s.up.addr, filepath.Join(n.Home, "pulled-direct")
			}
			got, err := skopeoPull(ctx, n.Host, reg, out)
			took[i] = time.Since(t0)
			if err == nil && got != s.want {
				err = fmt.Errorf("%s pulled manifest %s, want %s", n.Host.NS, got, s.want)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pull %d: %v\nnode stderr: %s", i, err, nodes[i].Stderr())
		}
	}
	return took
}

// TestRegistryMirror: one host pulls an image of 4 layers through its
// node's mirror, then three more pull it at once through theirs, all with
// skopeo from a docker-registry upstream. Every pull gets the pushed
// manifest digest and blobs, and the upstream serves each layer at most
// twice in all.
func TestRegistryMirror(t *testing.T) {
	const rate = 200e6
	s := setRegistryStage(t, 4, int64(pick(2, 8))*mib, 4, rate)
	ctx, cancel := context.WithTimeout(context.Background(), pick(3*time.Minute, 10*time.Minute))
	defer cancel()
	first := s.startMirrorNode(t, s.hs[1], nil)
	s.pullAll(ctx, t, []*Node{first}, false)
	var rest []*Node
	for _, h := range s.hs[2:] {
		rest = append(rest, s.startMirrorNode(t, h, []string{first.Addr()}))
	}
	s.pullAll(ctx, t, rest, false)
	gets, _ := s.up.served()
	for _, l := range s.blobs {
		if gets[l] == 0 || gets[l] > 2 {
			t.Errorf("docker-registry served layer %s %d times, want 1 or 2", l, gets[l])
		}
	}
	t.Logf("docker-registry blob GETs by layer: %v", gets)
}

// TestRegistryCrowd: 8 hosts on shaped links pull one image through their
// own mirrors at the same moment, then the same 8 pull it straight from
// the upstream at once, for comparison. FIGURES: per-host completion p50
// and p99 of both and the upstream's egress over the image size. Long
// (SHOAL_LONG=1): 8 layers of 16 MiB; short: 4 of 4 MiB.
func TestRegistryCrowd(t *testing.T) {
	if os.Getenv("SHOAL_REGISTRY_DRILL") == "" && !long() {
		t.Skip("set SHOAL_REGISTRY_DRILL=1 (or SHOAL_LONG=1) to run the 8-host registry drill")
	}
	const rate = 100e6
	layers := int64(pick(4, 8))
	s := setRegistryStage(t, 8, int64(pick(4, 16))*mib, layers, rate)
	ctx, cancel := context.WithTimeout(context.Background(), pick(5*time.Minute, 15*time.Minute))
	defer cancel()
	var nodes []*Node
	for i, h := range s.hs[1:] {
		var boot []string
		if i > 0 {
			boot = []string{nodes[0].Addr()}
		}
		nodes = append(nodes, s.startMirrorNode(t, h, boot))
	}
	// SHOAL_REGISTRY_DIRECT_FIRST=1 runs the direct pulls first, to
	// alternate the order between runs.
	directFirst := os.Getenv("SHOAL_REGISTRY_DIRECT_FIRST") != ""
	var direct []time.Duration
	var egressDirect int64
	if directFirst {
		direct = s.pullAll(ctx, t, nodes, true)
		_, egressDirect = s.up.served()
	}
	took := s.pullAll(ctx, t, nodes, false)
	gets, egress := s.up.served()
	if directFirst {
		for _, l := range s.blobs {
			gets[l] -= len(nodes) // the direct pulls' GETs
		}
		egress -= egressDirect
	}
	perLayer := []int{}
	for _, l := range s.blobs {
		perLayer = append(perLayer, gets[l])
	}
	if !directFirst {
		direct = s.pullAll(ctx, t, nodes, true)
		_, all := s.up.served()
		egressDirect = all - egress
	}
	q := func(ds []time.Duration, f float64) time.Duration {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ds[min(len(ds)-1, int(f*float64(len(ds))))].Round(10 * time.Millisecond)
	}
	t.Logf("FIGURES registry crowd (direct first: %v): %d hosts at %.0f Mbit/s (upstream up %.0f Mbit/s), image %.1f MiB (%d layers): through mirrors p50 %v p99 %v, upstream egress %.2f x the image, GETs per layer %v; straight from the upstream p50 %v p99 %v, egress %.2f x",
		directFirst, len(nodes), rate/1e6, rate/1e6, float64(s.total)/mib, layers, q(took, 0.5), q(took, 0.99),
		float64(egress)/float64(s.total), perLayer, q(direct, 0.5), q(direct, 0.99), float64(egressDirect)/float64(s.total))
	for _, l := range s.blobs {
		if gets[l] == 0 || gets[l] > 2 {
			t.Errorf("docker-registry served layer %s %d times through the mirrors, want 1 or 2", l, gets[l])
		}
	}
}
