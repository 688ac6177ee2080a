package registry_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/seed"
)

type regResponse struct {
	status int
	header http.Header
	body   []byte
	code   string // first registry error code, if any
	msg    string
}

func do(t *testing.T, method, url string, hdr ...string) regResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := regResponse{status: resp.StatusCode, header: resp.Header, body: b}
	var e struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if json.Unmarshal(b, &e) == nil && len(e.Errors) > 0 {
		r.code, r.msg = e.Errors[0].Code, e.Errors[0].Message
	}
	return r
}

// TestPullAPI checks the pull API's answers, headers, ranges and errors on
// a node that pulled an image.
func TestPullAPI(t *testing.T) {
	up := newUpstream(t)
	img := pushImage(t, up.host, "shoal/app:v1", 256<<10, 2, 3)
	imgDigest, blobs := layerDigests(t, img)
	rawManifest, _ := img.RawManifest()
	mt, _ := img.MediaType()
	n := startMirror(t, up.host, "")
	base := "http://" + n.RegistryAddr() + "/v2/"

	r := do(t, "GET", base)
	if r.status != 200 || r.header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Fatalf("GET /v2/: %d %v", r.status, r.header)
	}
	for _, url := range []string{base + "shoal/app/manifests/v1", base + "shoal/app/manifests/v1?ns=" + up.host, base + "shoal/app/manifests/" + imgDigest} {
		r = do(t, "GET", url, "Accept", string(mt))
		if r.status != 200 || string(r.body) != string(rawManifest) || r.header.Get("Docker-Content-Digest") != imgDigest || r.header.Get("Content-Type") != string(mt) {
			t.Fatalf("GET %s: %d, digest %q, type %q, body %q", url, r.status, r.header.Get("Docker-Content-Digest"), r.header.Get("Content-Type"), r.body)
		}
		h := do(t, "HEAD", url, "Accept", string(mt))
		if h.status != 200 || h.header.Get("Content-Length") != r.header.Get("Content-Length") || len(h.body) != 0 {
			t.Fatalf("HEAD %s: %d, length %q", url, h.status, h.header.Get("Content-Length"))
		}
	}

	layer := blobs[0]
	r = do(t, "GET", base+"shoal/app/blobs/"+layer)
	if r.status != 200 || hexSum(r.body) != layer || r.header.Get("Docker-Content-Digest") != layer {
		t.Fatalf("GET blob: %d, %d bytes hashing to %s", r.status, len(r.body), hexSum(r.body))
	}
	full := r.body
	h := do(t, "HEAD", base+"shoal/app/blobs/"+layer)
	if h.status != 200 || h.header.Get("Content-Length") != itoa(len(full)) || len(h.body) != 0 {
		t.Fatalf("HEAD blob: %d, length %q, want %d", h.status, h.header.Get("Content-Length"), len(full))
	}
	rg := do(t, "GET", base+"shoal/app/blobs/"+layer, "Range", "bytes=10-19")
	if rg.status != 206 || string(rg.body) != string(full[10:20]) || rg.header.Get("Content-Range") != "bytes 10-19/"+itoa(len(full)) {
		t.Fatalf("ranged GET: %d %q, body %x", rg.status, rg.header.Get("Content-Range"), rg.body)
	}

	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "Shoal/App/manifests/v1", 400, "NAME_INVALID"},
		{"GET", "shoal//app/manifests/v1", 400, "NAME_INVALID"},
		{"GET", "shoal/app/manifests/-v1", 400, "MANIFEST_INVALID"},
		{"GET", "shoal/app/manifests/sha256:abc", 400, "MANIFEST_INVALID"},
		{"GET", "shoal/app/blobs/sha256:abc", 400, "DIGEST_INVALID"},
		{"GET", "shoal/app/blobs/" + strings.ToUpper(layer), 400, "DIGEST_INVALID"},
		{"GET", "shoal/app/blobs/sha512:" + strings.Repeat("ab", 64), 400, "DIGEST_INVALID"},
		{"GET", "shoal/app/blobs/latest", 400, "DIGEST_INVALID"},
		{"GET", "shoal/app/manifests/v1?ns=a/b", 400, "NAME_INVALID"},
		{"PUT", "shoal/app/manifests/v1", 405, "UNSUPPORTED"},
		{"POST", "shoal/app/blobs/uploads/", 405, "UNSUPPORTED"},
		{"GET", "shoal/app/tags/list", 404, "UNSUPPORTED"},
		{"GET", "shoal/app/manifests/nope", 404, "MANIFEST_UNKNOWN"},
		// Another registry named by ?ns= on a loopback address: refused.
		{"GET", "shoal/app/manifests/v1?ns=127.0.0.2:9", 502, "UNAVAILABLE"},
	} {
		r := do(t, c.method, base+c.path)
		if r.status != c.status || r.code != c.code {
			t.Errorf("%s %s: %d %s (%s), want %d %s", c.method, c.path, r.status, r.code, r.msg, c.status, c.code)
		}
		if r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: error body of type %q", c.method, c.path, r.header.Get("Content-Type"))
		}
	}

	// An unknown digest: 404 BLOB_UNKNOWN after the DHT search (at most
	// LookupTimeout, 5 s) and one upstream request (at most
	// UpstreamTimeout, 30 s, to its headers).
	unknown := "sha256:" + strings.Repeat("0", 64)
	t0 := time.Now()
	r = do(t, "GET", base+"shoal/app/blobs/"+unknown)
	took := time.Since(t0)
	if r.status != 404 || r.code != "BLOB_UNKNOWN" {
		t.Fatalf("unknown blob: %d %s %s", r.status, r.code, r.msg)
	}
	if took > 35*time.Second {
		t.Fatalf("unknown blob answered in %v, over the stated 35 s", took)
	}
	t.Logf("unknown digest: 404 in %v", took.Round(time.Millisecond))
}

// TestUpstreamDown: with the upstream gone, what no peer holds is a clear
// 502 and the blobs peers hold are still served.
func TestUpstreamDown(t *testing.T) {
	up := newUpstream(t)
	img := pushImage(t, up.host, "shoal/app:v1", 256<<10, 2, 4)
	_, blobs := layerDigests(t, img)
	a := startMirror(t, up.host, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := pull(ctx, a, "shoal/app:v1"); err != nil {
		t.Fatal(err)
	}
	b := startMirror(t, up.host, "", a)
	up.srv.Close()
	base := "http://" + b.RegistryAddr() + "/v2/shoal/app/"

	r := do(t, "GET", base+"manifests/v1")
	if r.status != 502 || r.code != "UNAVAILABLE" || !strings.Contains(r.msg, up.host) {
		t.Fatalf("manifest with the upstream down: %d %s %q", r.status, r.code, r.msg)
	}
	unknown := "sha256:" + strings.Repeat("1", 64)
	r = do(t, "GET", base+"blobs/"+unknown)
	if r.status != 502 || r.code != "UNAVAILABLE" || !strings.Contains(r.msg, "no peer holds") {
		t.Fatalf("blob nobody holds with the upstream down: %d %s %q", r.status, r.code, r.msg)
	}
	t.Logf("502 body: %s", r.body)
	for _, l := range blobs {
		r = do(t, "GET", base+"blobs/"+l)
		if r.status != 200 || hexSum(r.body) != l {
			t.Fatalf("blob %s held by a peer: %d %s %q", l, r.status, r.code, r.msg)
		}
	}
}

// TestBearerUpstream: an upstream that wants a bearer token (Docker Hub's
// flow: 401 with a Bearer challenge, a token from the realm with Basic
// credentials) is pulled with the credentials of the auth file, and
// refused (403 DENIED) without them.
func TestBearerUpstream(t *testing.T) {
	up := newUpstream(t)
	img := pushImage(t, up.host, "shoal/app:v1", 128<<10, 1, 5)
	imgDigest, _ := layerDigests(t, img)
	const token = "tok-42"
	var tokenSrv *httptest.Server
	tokenSrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			u, p, ok := r.BasicAuth()
			if !ok || u != "alice" || p != "s3cret" || !strings.Contains(r.URL.Query().Get("scope"), "repository:shoal/app:pull") {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"token": token})
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+tokenSrv.URL+`/token",service="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		up.srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer tokenSrv.Close()
	host := strings.TrimPrefix(tokenSrv.URL, "http://")

	auth := filepath.Join(t.TempDir(), "auth.json")
	os.WriteFile(auth, []byte(`{"auths": {"`+host+`": {"auth": "`+base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))+`"}}}`), 0o600)
	start := func(authFile string) *seed.Node {
		n, err := seed.Start(seed.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", API: "off",
			Registry: "127.0.0.1:0", RegistryUpstream: tokenSrv.URL, RegistryAuth: authFile})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	with := start(auth)
	dg, _, err := pull(ctx, with, "shoal/app:v1")
	if err != nil || dg != imgDigest {
		t.Fatalf("pull with credentials: %s, %v", dg, err)
	}
	without := start("")
	r := do(t, "GET", "http://"+without.RegistryAddr()+"/v2/shoal/app/manifests/v1")
	if r.status != 403 || r.code != "DENIED" {
		t.Fatalf("pull without credentials: %d %s %q, want 403 DENIED", r.status, r.code, r.msg)
	}
}

func hexSum(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }

func itoa(i int) string { return strconv.Itoa(i) }
