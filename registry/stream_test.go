package registry_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	mrand "math/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
)

// blobUpstream is a registry (for /v2/) that serves body for digest,
// pausing after half until release is closed.
func blobUpstream(t *testing.T, digest string, body []byte, release chan struct{}) string {
	t.Helper()
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/blobs/"+digest) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			w.Write(body[len(body)/2:])
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func randomBlob(n int, seed int64) ([]byte, string) {
	b := make([]byte, n)
	mrand.New(mrand.NewSource(seed)).Read(b)
	s := sha256.Sum256(b)
	return b, "sha256:" + hex.EncodeToString(s[:])
}

// TestStreamFromUpstream: a client gets a blob's bytes while the upstream
// still sends it, and the whole blob, verified, at the end.
func TestStreamFromUpstream(t *testing.T) {
	body, digest := randomBlob(3<<20, 11)
	release := make(chan struct{})
	host := blobUpstream(t, digest, body, release)
	n := startMirror(t, host, "")
	resp, err := http.Get("http://" + n.RegistryAddr() + "/v2/shoal/app/blobs/" + digest)
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The upstream has sent half and waits: the client reads the first
	// quarter meanwhile.
	first := make([]byte, len(body)/4)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		close(release)
		t.Fatalf("reading while the upstream waits: %v", err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(first, rest...); string(got) != string(body) {
		t.Fatalf("streamed %d bytes that differ from the blob's %d", len(got), len(body))
	}
}

// TestStreamWithholdsUnverified: an upstream sends other bytes of the
// right length for a digest. The client never gets the last byte: the
// connection is cut, and the bytes never reach a client.
func TestStreamWithholdsUnverified(t *testing.T) {
	good, digest := randomBlob(1<<20, 12)
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 1
	release := make(chan struct{})
	close(release)
	host := blobUpstream(t, digest, bad, release)
	n := startMirror(t, host, "")
	resp, err := http.Get("http://" + n.RegistryAddr() + "/v2/shoal/app/blobs/" + digest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("read %d bytes, err %v: want a cut connection", len(got), err)
		}
		if len(got) >= len(bad) {
			t.Fatalf("client got %d bytes of %d: the unverified last byte went out", len(got), len(bad))
		}
		t.Logf("cut after %d of %d bytes: %v", len(got), len(bad), err)
	} else if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 200 then a cut, or 502", resp.StatusCode)
	}
	// A second request finds nothing held and fails again.
	r2, err := http.Get("http://" + n.RegistryAddr() + "/v2/shoal/app/blobs/" + digest)
	if err == nil {
		b, _ := io.ReadAll(r2.Body)
		r2.Body.Close()
		if string(b) == string(bad) {
			t.Fatal("the unverified blob was served whole on a second request")
		}
	}
}

// TestStuckFetcher: a peer announces a blob and answers "pending" while its
// own upstream fetch is stuck (as a lying peer would). Another node waits
// for it only while it moves, then fetches from its own upstream, and its
// client gets the blob.
func TestStuckFetcher(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the stall timeout (20 s)")
	}
	body, digest := randomBlob(2<<20, 13)
	stuck := make(chan struct{})
	a := startMirror(t, blobUpstream(t, digest, body, stuck), "")
	defer close(stuck) // runs before the cleanups that close the nodes
	open := make(chan struct{})
	close(open)
	var gets atomic.Int32
	good := blobUpstream(t, digest, body, open)
	b := startMirror(t, countingProxy(t, good, digest, &gets), "", a)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() { // a's client: its fetch hangs halfway
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+a.RegistryAddr()+"/v2/shoal/app/blobs/"+digest, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	waitProvider(t, ctx, b, digest)
	t0 := time.Now()
	got, err := getBlob(ctx, b, "shoal/app", digest)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(body) {
		t.Fatalf("got %d bytes that differ from the blob", len(got))
	}
	if n := gets.Load(); n != 1 {
		t.Fatalf("b's upstream served the blob %d times, want 1", n)
	}
	t.Logf("blob served after waiting %v for the stuck peer", time.Since(t0).Round(time.Second))
}

// countingProxy forwards to host, counting GETs of digest.
func countingProxy(t *testing.T, host, digest string, n *atomic.Int32) string {
	t.Helper()
	target, _ := url.Parse("http://" + host)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+digest) {
			n.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
