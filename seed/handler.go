package seed

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// The control API: HTTP/1.1 on a Unix socket inside the data folder (the
// local CLI's way in: only the folder's owner can reach it, so the token
// never goes to a stranger) and, if configured, on a loopback TCP address.
// Every request carries "Authorization: Bearer <token>" with the token from
// the 0600 file api-token in the data folder. TCP requests from
// non-loopback addresses, or with a Host header that is not a loopback
// address (DNS rebinding), are refused. docs/api.md lists the endpoints.

// streamLine is one line of a streamed answer (newline-delimited JSON): any
// number of progress lines, then one result or error line.
type streamLine struct {
	Progress *Progress       `json:"progress,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *APIError       `json:"error,omitempty"`
}

// errorBody is the body of a failed plain (not streamed) request.
type errorBody struct {
	Error *APIError `json:"error"`
}

// NewHandler serves api over HTTP (without the token and loopback guard;
// see newAPIHandler).
func NewHandler(api API) http.Handler {
	mux := http.NewServeMux()
	plain := func(pattern string, f func(r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			v, err := f(r)
			if err != nil {
				writeError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, v)
		})
	}
	plain("GET /v1/status", func(r *http.Request) (any, error) { return api.Status(r.Context()) })
	plain("GET /v1/items", func(r *http.Request) (any, error) {
		items, err := api.Items(r.Context())
		if items == nil {
			items = []Item{}
		}
		return items, err
	})
	plain("GET /v1/id", func(r *http.Request) (any, error) { return api.Identity(r.Context()) })
	plain("GET /v1/peers", func(r *http.Request) (any, error) {
		ps, err := api.Peers(r.Context())
		if ps == nil {
			ps = []PeerInfo{}
		}
		return ps, err
	})
	plain("DELETE /v1/items/{id}", func(r *http.Request) (any, error) { return api.Remove(r.Context(), r.PathValue("id")) })
	plain("GET /v1/items/{id}/link", func(r *http.Request) (any, error) {
		l, err := api.Link(r.Context(), r.PathValue("id"))
		return map[string]string{"link": l}, err
	})
	mux.HandleFunc("POST /v1/publish", func(w http.ResponseWriter, r *http.Request) {
		var req PublishRequest
		if readJSON(w, r, &req) {
			stream(w, func(progress func(Progress)) (any, error) { return api.Publish(r.Context(), req, progress) })
		}
	})
	mux.HandleFunc("POST /v1/get", func(w http.ResponseWriter, r *http.Request) {
		var req GetRequest
		if readJSON(w, r, &req) {
			stream(w, func(progress func(Progress)) (any, error) { return api.Get(r.Context(), req, progress) })
		}
	})
	readRoutes(mux, api) // ls, cat, select, downloads/{id}: gateway_api.go
	return mux
}

// newAPIHandler is the node's handler: NewHandler plus /metrics, behind the
// token and loopback guard.
func newAPIHandler(n *Node, token string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", NewHandler(n))
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		n.writeMetrics(w)
	})
	return guard(mux, token)
}

type unixConnKey struct{}

// guard refuses requests that do not come from loopback or the Unix socket,
// or that lack the token.
func guard(next http.Handler, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if unix, _ := r.Context().Value(unixConnKey{}).(bool); !unix {
			if ap, err := netip.ParseAddrPort(r.RemoteAddr); err != nil || !ap.Addr().Unmap().IsLoopback() {
				writeError(w, fmt.Errorf("%w: the control API answers loopback only", ErrForbidden))
				return
			}
			if !loopbackHost(r.Host) {
				writeError(w, fmt.Errorf("%w: host %q is not a loopback address", ErrForbidden, r.Host))
				return
			}
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !tokenEqual(got, token) {
			writeError(w, fmt.Errorf("%w: missing or wrong API token", ErrUnauthorized))
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
		writeError(w, fmt.Errorf("%w: body: %v", ErrBadRequest, err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// httpStatus is the HTTP status of an error code.
func httpStatus(code string) int {
	switch code {
	case CodeBadLink, CodeBadRequest:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeExists, CodeBusy:
		return http.StatusConflict
	case CodeDiskFull:
		return http.StatusInsufficientStorage
	case CodeClosed, CodeNoPeers:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) {
	e := toAPIError(err)
	writeJSON(w, httpStatus(e.Code), errorBody{Error: e})
}

// streamWriteTimeout bounds each write of a stream; the server's own
// WriteTimeout is pushed forward before each line, so a long download's
// answer lives as long as it makes progress and a reader that stops
// reading is dropped.
const streamWriteTimeout = 30 * time.Second

// stream runs op, sending its progress at most every 200 ms and then its
// result, as newline-delimited JSON.
func stream(w http.ResponseWriter, op func(progress func(Progress)) (any, error)) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	var (
		mu   sync.Mutex // progress may be called from several goroutines
		last time.Time
	)
	send := func(l streamLine) {
		rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		enc.Encode(l)
		rc.Flush()
	}
	progress := func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(last) >= 200*time.Millisecond || (p.Total > 0 && p.Done == p.Total) {
			last = now
			send(streamLine{Progress: &p})
		}
	}
	// Headers out now: the client learns the node took the request.
	send(streamLine{})
	res, err := op(progress)
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		send(streamLine{Error: toAPIError(err)})
		return
	}
	raw, err := json.Marshal(res)
	if err != nil {
		send(streamLine{Error: toAPIError(err)})
		return
	}
	send(streamLine{Result: raw})
}

// withUnixMark marks requests that came over a Unix socket.
func withUnixMark(ctx context.Context, c net.Conn) context.Context {
	if _, ok := c.LocalAddr().(*net.UnixAddr); ok {
		return context.WithValue(ctx, unixConnKey{}, true)
	}
	return ctx
}
