package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
)

// Backend opens content for the gateway; package seed's Node implements it.
type Backend interface {
	// Open returns content id, from the store or by starting or joining a
	// download (hints are the request's peer hints, already parsed). It
	// returns once the manifest is known, or with ctx's cause. Errors
	// wrapping ErrBadRequest are the client's fault (400); errors wrapping
	// ErrUnavailable ask the client to come back later (503).
	Open(ctx context.Context, id chunker.ContentID, hints []chunker.PeerHint) (Content, error)
}

// Content is one opened content item. Close releases it (a download the
// gateway started may stop when its last user closed it).
type Content interface {
	Manifest() *chunker.Manifest
	// NewReader reads content bytes [off, off+n), blocking until they are
	// verified; readAhead bytes past the read position are asked for
	// ahead of time. Closing the reader releases its priority and wakes a
	// blocked Read.
	NewReader(off, n, readAhead int64) (io.ReadCloser, error)
	Close() error
}

// ErrBadRequest marks backend errors caused by the request (400).
var ErrBadRequest = errors.New("gateway: bad request")

// ErrUnavailable marks backend errors that pass with time (503 with
// Retry-After): the node's cache is full of content being read, say.
var ErrUnavailable = errors.New("gateway: unavailable")

// RetryAfter is the Retry-After, in seconds, of a 503 for ErrUnavailable.
const RetryAfter = 5

// Config configures a Gateway. The zero value means defaults except
// Backend, which is required.
type Config struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:7747".
	Addr string
	// Listener, if set, is used instead of listening on Addr (tests).
	Listener net.Listener
	Backend  Backend
	// MaxReaders caps the requests reading content at once; more get 503.
	// Default 64.
	MaxReaders int
	// FindTimeout bounds the wait for content the node does not hold to be
	// found (its manifest fetched); then 504. Default 30 s.
	FindTimeout time.Duration
	// StallTimeout ends a response whose next bytes did not arrive for
	// this long. Default 60 s.
	StallTimeout time.Duration
	// ReadAhead is how far past its position a reader asks for chunks
	// ahead of time. Default 8 MiB.
	ReadAhead int64
	// Logger receives the gateway's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultAddr is the gateway's default address.
const DefaultAddr = "127.0.0.1:7747"

func (c Config) populate() (Config, error) {
	if c.Backend == nil {
		return c, errors.New("gateway: no backend")
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxReaders <= 0 {
		c.MaxReaders = 64
	}
	if c.FindTimeout <= 0 {
		c.FindTimeout = 30 * time.Second
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 60 * time.Second
	}
	if c.ReadAhead <= 0 {
		c.ReadAhead = 8 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Gateway is the HTTP gateway. Make it with New, Run it once.
type Gateway struct {
	cfg   Config
	ln    net.Listener
	slots chan struct{} // one per request reading content

	closeOnce sync.Once
}

// New validates cfg and opens the listener.
func New(cfg Config) (*Gateway, error) {
	cfg, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("gateway: listening on %s: %w (set gateway to another address, or off)", cfg.Addr, err)
		}
	}
	return &Gateway{cfg: cfg, ln: ln, slots: make(chan struct{}, cfg.MaxReaders)}, nil
}

// Addr returns the address the gateway listens on.
func (g *Gateway) Addr() net.Addr { return g.ln.Addr() }

// Handler returns the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /shoal/{id}", g.serve)
	mux.HandleFunc("GET /shoal/{id}/{path...}", g.serve)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpError(w, http.StatusMethodNotAllowed, "the gateway is read-only: GET and HEAD only")
			return
		}
		httpError(w, http.StatusNotFound, "not found: use /shoal/<content-id>[/<path>]")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Dot segments are refused before the mux would redirect to the
		// cleaned path: "..", raw or escaped, never leaves the content.
		parts := strings.Split(r.URL.Path, "/")
		for i, c := range parts {
			if c == ".." || c == "." || c == "" && i > 0 && i < len(parts)-1 {
				httpError(w, http.StatusNotFound, "not found: the path is not in the content")
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// Run serves until ctx ends, then shuts down: it returns after every
// handler exited (requests in progress are cut after 2 s).
func (g *Gateway) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(g.cfg.Logger.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(g.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}

// Close releases the listener (Run's shutdown also does). Idempotent.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() { g.ln.Close() })
	return nil
}

func httpError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("ETag")
	h.Del("Accept-Ranges")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
