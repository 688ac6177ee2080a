package seed

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shoal-p2p/shoal/swarm"
)

func TestGuard(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := guard(ok, token)
	tests := []struct {
		name   string
		remote string
		host   string
		auth   string
		want   int
	}{
		{"good", "127.0.0.1:5000", "127.0.0.1:7746", "Bearer " + token, http.StatusTeapot},
		{"good ipv6", "[::1]:5000", "[::1]:7746", "Bearer " + token, http.StatusTeapot},
		{"localhost host", "127.0.0.1:5000", "localhost:7746", "Bearer " + token, http.StatusTeapot},
		{"no token", "127.0.0.1:5000", "127.0.0.1:7746", "", http.StatusUnauthorized},
		{"wrong token", "127.0.0.1:5000", "127.0.0.1:7746", "Bearer " + strings.Repeat("x", 32), http.StatusUnauthorized},
		{"not bearer", "127.0.0.1:5000", "127.0.0.1:7746", token, http.StatusUnauthorized},
		{"remote peer", "10.1.2.3:5000", "127.0.0.1:7746", "Bearer " + token, http.StatusForbidden},
		{"rebinding host", "127.0.0.1:5000", "evil.example:7746", "Bearer " + token, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/status", nil)
			r.RemoteAddr = tc.remote
			r.Host = tc.host
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d (body %s)", w.Code, tc.want, w.Body)
			}
		})
	}
}

func TestTokenFile(t *testing.T) {
	path := t.TempDir() + "/api-token"
	a, err := loadOrCreateToken(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadOrCreateToken(path)
	if err != nil || a != b {
		t.Fatalf("second load gave %q (%v), want %q", b, err, a)
	}
	if len(a) != 64 {
		t.Fatalf("token %q has %d characters, want 64", a, len(a))
	}
}

func TestMetricsFormat(t *testing.T) {
	var m Metrics
	m.BytesUp.Add(42)
	m.ChunksRejected.Add(3)
	m.addDownload(swarm.Progress{SessionsYielded: 5})
	var sb strings.Builder
	if err := m.WritePrometheus(&sb, 7, 2); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE shoal_bytes_up_total counter\nshoal_bytes_up_total 42\n",
		"shoal_chunks_rejected_total 3\n",
		"# TYPE shoal_peers gauge\nshoal_peers 7\n",
		"shoal_library_items 2\n",
		"shoal_download_sessions_yielded_total 5\n",
	} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, sb.String())
		}
	}
}
