package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// Mirror is a pull-through registry mirror. Its methods are safe for
// concurrent use.
type Mirror struct {
	// Set by New, then read-only.
	cfg  Config
	log  *slog.Logger
	node Node
	m    *metrics
	ln   net.Listener
	srv  *http.Server
	def  *upstream
	auth authFile

	// Set by Run before serving.
	ctx context.Context // the mirror's lifetime
	wg  sync.WaitGroup  // fetches and announcements

	penalised atomic.Uint64

	mu         sync.Mutex
	blobs      map[Digest]blobEntry // verified blobs held
	flights    map[Digest]*flight   // fetches in progress
	banned     map[identity.PeerID]time.Time
	upstreams  map[string]*upstream // by ?ns= host
	manifests  *manifestCache
	mapStreams int
	mapPerPeer map[identity.PeerID]int
	stopping   bool // Run is waiting for its goroutines: start no more
	closeOnce  sync.Once
}

// New checks cfg, loads the blob index from cfg.Dir and binds cfg.Addr. It
// starts nothing; Run serves.
func New(cfg Config) (*Mirror, error) {
	cfg, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	m := &Mirror{
		cfg:        cfg,
		log:        cfg.Logger,
		node:       cfg.Node,
		m:          newMetrics(cfg.Registerer),
		blobs:      map[Digest]blobEntry{},
		flights:    map[Digest]*flight{},
		banned:     map[identity.PeerID]time.Time{},
		upstreams:  map[string]*upstream{},
		manifests:  newManifestCache(maxManifestCached),
		mapPerPeer: map[identity.PeerID]int{},
	}
	if m.auth, err = loadAuthFile(cfg.AuthFile); err != nil {
		return nil, err
	}
	if m.def, err = m.newUpstream(cfg.Upstream, false); err != nil {
		return nil, err
	}
	for _, d := range []string{"blobs", "peer", "tmp", "index"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	os.RemoveAll(filepath.Join(cfg.Dir, "tmp"))
	os.MkdirAll(filepath.Join(cfg.Dir, "tmp"), 0o700)
	if err := m.loadIndex(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("registry: listening on %s: %w (set -registry to another address)", cfg.Addr, err)
	}
	// Clients are the node's own container tools, but the address may be
	// reachable by others: cap connections (more wait in the accept queue).
	m.ln = netutil.LimitListener(ln, maxClientConns)
	m.srv = &http.Server{
		Handler:           m.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	return m, nil
}

// Addr is the address the mirror serves on.
func (m *Mirror) Addr() string { return m.ln.Addr().String() }

// Run announces the blobs the mirror holds, serves until ctx ends, and
// returns after every goroutine it started has exited.
func (m *Mirror) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.mu.Lock()
	m.ctx = ctx
	held := make([]Digest, 0, len(m.blobs))
	for d := range m.blobs {
		held = append(held, d)
	}
	m.mu.Unlock()
	for _, d := range held {
		m.provide(d)
	}
	m.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	errc := make(chan error, 1)
	go func() { errc <- m.srv.Serve(m.ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	m.srv.Shutdown(sctx)
	scancel()
	m.srv.Close()
	if err == nil {
		<-errc
	}
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	cancel()
	m.wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close releases the listener of a mirror whose Run never started. It is
// idempotent.
func (m *Mirror) Close() error {
	m.closeOnce.Do(func() { m.ln.Close() })
	return nil
}

// goRun runs f on a goroutine Run waits for, under the mirror's lifetime.
func (m *Mirror) goRun(f func(ctx context.Context)) bool {
	m.mu.Lock()
	ctx := m.ctx
	if ctx == nil || m.stopping {
		m.mu.Unlock()
		return false
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		f(ctx)
	}()
	return true
}

// provide announces that the node holds (or is fetching) d.
func (m *Mirror) provide(d Digest) {
	m.goRun(func(ctx context.Context) {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := m.node.Provide(pctx, BlobKey(d)); err != nil {
			m.log.Debug("announcing blob", "content", d.String(), "err", err)
		}
	})
}

// registry error codes of the distribution spec.
const (
	codeBlobUnknown     = "BLOB_UNKNOWN"
	codeDigestInvalid   = "DIGEST_INVALID"
	codeManifestUnknown = "MANIFEST_UNKNOWN"
	codeManifestInvalid = "MANIFEST_INVALID"
	codeNameInvalid     = "NAME_INVALID"
	codeNameUnknown     = "NAME_UNKNOWN"
	codeUnsupported     = "UNSUPPORTED"
	codeDenied          = "DENIED"
	codeUnauthorized    = "UNAUTHORIZED"
	codeTooMany         = "TOOMANYREQUESTS"
	codeUnavailable     = "UNAVAILABLE"
	codeUnknown         = "UNKNOWN"
)

type regError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError writes a registry error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(struct {
		Errors []regError `json:"errors"`
	}{[]regError{{Code: code, Message: msg}}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(b)))
	h.Del("Docker-Content-Digest")
	w.WriteHeader(status)
	w.Write(b)
}

// Penalised returns how many times peers were penalised for a wrong
// mapping.
func (m *Mirror) Penalised() uint64 { return m.penalised.Load() }

// Providers returns the peers (other than this node) that announce d in
// the DHT, as the mirror would ask them on a miss.
func (m *Mirror) Providers(ctx context.Context, d Digest) []Peer {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.LookupTimeout)
	defer cancel()
	var out []Peer
	self := m.node.Self()
	m.node.FindProviders(ctx, BlobKey(d), func(p Peer) {
		if p.ID != self {
			out = append(out, p)
		}
	})
	return out
}
