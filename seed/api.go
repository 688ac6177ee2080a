package seed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// The control API: HTTP/1.1 on a loopback TCP address, every request
// carrying "Authorization: Bearer <token>" with the token from the 0600 file
// api-token in the data folder. Requests from non-loopback addresses, or
// with a Host header that is not a loopback address (DNS rebinding), are
// refused. docs/api.md lists the endpoints.

// Progress is one progress report of a long operation.
type Progress struct {
	Done  int64 `json:"done"`            // bytes done
	Total int64 `json:"total"`           // bytes in all
	Peers int   `json:"peers,omitempty"` // peers serving a download
	Rate  int64 `json:"rate,omitempty"`  // bytes per second, recent
}

// Status is the node's summary.
type Status struct {
	PeerID    string `json:"peer_id"`
	Listen    string `json:"listen"`
	API       string `json:"api"`
	Peers     int    `json:"peers"`
	Items     int    `json:"items"`
	Uptime    string `json:"uptime"`
	BytesUp   int64  `json:"bytes_up"`
	BytesDown int64  `json:"bytes_down"`
	Active    int    `json:"active_downloads"`
	// Downloads lists the downloads in progress.
	Downloads []DownloadStatus `json:"downloads,omitempty"`
}

// DownloadStatus is the state of one download in progress.
type DownloadStatus struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Done     int64  `json:"done"`  // content bytes verified
	Total    int64  `json:"total"` // 0 until the manifest is known
	Peers    int    `json:"peers"`
	Rate     int64  `json:"rate"` // bytes per second, recent
	ETA      string `json:"eta,omitempty"`
	Rejected int    `json:"rejected_chunks"`
	Banned   int    `json:"banned_peers"`
}

// PeerInfo describes one known peer.
type PeerInfo struct {
	PeerID string `json:"peer_id"`
	Addr   string `json:"addr"`
	// Path is how the open connection to the peer runs: PathDirect,
	// PathLAN or PathRelayed; "" when none is open.
	Path string `json:"path,omitempty"`
	// Conn is the remote address of the open connection, if any.
	Conn string `json:"conn,omitempty"`
}

// The paths of PeerInfo.
const (
	PathDirect  = "direct"  // to the peer's public (or only) address
	PathLAN     = "lan"     // to its address on a network this node is on
	PathRelayed = "relayed" // through a relay peer, end-to-end encrypted
)

// IDInfo describes the node's identity.
type IDInfo struct {
	PeerID    string `json:"peer_id"`
	PublicKey string `json:"public_key"` // hex of the 74-byte LibNaCLPK key
	Mid       string `json:"mid"`        // IPv8's SHA-1 peer ID, hex
	Listen    string `json:"listen"`
}

// Published is the result of a publish.
type Published struct {
	Item Item   `json:"item"`
	Link string `json:"link"`
}

// backend is what the API serves; *Node implements it.
type backend interface {
	Status() Status
	Items() []Item
	Identity() IDInfo
	Peers() []PeerInfo
	Remove(id string) error
	Publish(ctx context.Context, path string, progress func(Progress)) (Published, error)
	Get(ctx context.Context, link, out string, progress func(Progress)) (Item, error)
	writeMetrics(w http.ResponseWriter) error
}

type publishRequest struct {
	Path string `json:"path"`
}

type getRequest struct {
	Link string `json:"link"`
	Out  string `json:"out"`
}

// streamLine is one line of a streamed answer (newline-delimited JSON): any
// number of progress lines, then one result or error line.
type streamLine struct {
	Progress *Progress       `json:"progress,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// newAPIHandler returns the control API's handler.
func newAPIHandler(b backend, token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, b.Status()) })
	mux.HandleFunc("GET /v1/items", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, b.Items()) })
	mux.HandleFunc("GET /v1/id", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, b.Identity()) })
	mux.HandleFunc("GET /v1/peers", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, b.Peers()) })
	mux.HandleFunc("DELETE /v1/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := b.Remove(r.PathValue("id")); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, ErrNotInLibrary) {
				code = http.StatusNotFound
			}
			writeError(w, code, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/publish", func(w http.ResponseWriter, r *http.Request) {
		var req publishRequest
		if !readJSON(w, r, &req) {
			return
		}
		stream(w, func(progress func(Progress)) (any, error) {
			return b.Publish(r.Context(), req.Path, progress)
		})
	})
	mux.HandleFunc("POST /v1/get", func(w http.ResponseWriter, r *http.Request) {
		var req getRequest
		if !readJSON(w, r, &req) {
			return
		}
		stream(w, func(progress func(Progress)) (any, error) {
			return b.Get(r.Context(), req.Link, req.Out, progress)
		})
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		b.writeMetrics(w)
	})
	return guard(mux, token)
}

// guard refuses requests that do not come from loopback or lack the token.
func guard(next http.Handler, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err != nil || !ap.Addr().Unmap().IsLoopback() {
			writeError(w, http.StatusForbidden, errors.New("the control API answers loopback only"))
			return
		}
		if !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, fmt.Errorf("host %q is not a loopback address", r.Host))
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !tokenEqual(got, token) {
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong API token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether an HTTP Host header names a loopback address.
func loopbackHost(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %v", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// stream runs op, sending its progress at most every 200 ms and then its
// result, as newline-delimited JSON.
func stream(w http.ResponseWriter, op func(progress func(Progress)) (any, error)) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	var (
		mu   sync.Mutex // progress may be called from several goroutines
		last time.Time
	)
	progress := func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(last) >= 200*time.Millisecond || p.Done == p.Total {
			last = now
			enc.Encode(streamLine{Progress: &p})
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
	res, err := op(progress)
	if err != nil {
		enc.Encode(streamLine{Error: err.Error()})
		return
	}
	raw, err := json.Marshal(res)
	if err != nil {
		enc.Encode(streamLine{Error: err.Error()})
		return
	}
	enc.Encode(streamLine{Result: raw})
}
