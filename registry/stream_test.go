package registry_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	mrand "math/rand"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

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
