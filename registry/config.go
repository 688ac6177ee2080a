package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// DefaultUpstream is the upstream when Config.Upstream is empty.
const DefaultUpstream = "https://registry-1.docker.io"

// Peer is a node that announced a key in the DHT.
type Peer struct {
	ID    identity.PeerID
	Addrs []netip.AddrPort
}

// Stream is one bidirectional overlay stream. Close ends the send side;
// Reset aborts both directions.
type Stream interface {
	io.Reader
	io.Writer
	Close() error
	Reset()
	SetDeadline(time.Time) error
}

// Fetched is content a Node fetched from peers.
type Fetched struct {
	Path string // the content's file
	Size int64
	New  bool // fetched now (false: the node already held it)
}

// Node is what the mirror needs of the shoal node it runs in. Its methods
// are called from many goroutines.
type Node interface {
	// Self is the node's own PeerID (never asked for mappings).
	Self() identity.PeerID
	// Provide announces key in the DHT until StopProviding.
	Provide(ctx context.Context, key [32]byte) error
	StopProviding(key [32]byte)
	// FindProviders calls found for the providers of key it finds, until
	// the lookup ends or ctx does.
	FindProviders(ctx context.Context, key [32]byte, found func(Peer))
	// OpenStream opens a stream tagged Tag to peer.
	OpenStream(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (Stream, error)
	// Publish publishes the file at path as shoal content, seeds it in
	// place and announces it; it returns the content ID.
	Publish(ctx context.Context, path string) ([32]byte, error)
	// Fetch downloads content id into the folder dir from peers (and any
	// other provider of id), calling progress with the bytes verified and
	// the content's size (0 until known). It fails when the content is not
	// a single file.
	Fetch(ctx context.Context, id [32]byte, peers []Peer, dir string, progress func(done, size int64)) (Fetched, error)
	// Forget stops seeding id and drops what the node stored of it.
	Forget(id [32]byte)
}

// Config configures a Mirror. The zero value of each optional field means
// its default.
type Config struct {
	// Addr is the TCP address to serve the registry API on. Required.
	Addr string
	// Upstream is the registry used without ?ns= (and for ?ns= naming its
	// host): a URL such as https://registry-1.docker.io or
	// http://127.0.0.1:5000. Default DefaultUpstream.
	Upstream string
	// AuthFile is a JSON file of upstream credentials in the "auths" form
	// of Docker's config.json: {"auths": {"HOST": {"username": "...",
	// "password": "..."}}} or {"auth": "base64(user:pass)"}. Hosts without
	// an entry are pulled anonymously. Empty: anonymous everywhere.
	AuthFile string
	// Dir holds the mirror's blobs and index. Required.
	Dir string
	// Node is the shoal node. Required.
	Node Node
	// Logger receives the mirror's logs; nil discards them.
	Logger *slog.Logger
	// Registerer, if set, gets the mirror's metrics.
	Registerer prometheus.Registerer
	// Transport carries upstream requests. Default: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper

	// ManifestTTL is how long a manifest fetched by tag is served from
	// cache. Default 30 s.
	ManifestTTL time.Duration
	// LookupTimeout bounds the DHT search and the mapping questions for
	// one blob. Default 5 s.
	LookupTimeout time.Duration
	// StallTimeout gives up a fetch from peers that makes no progress for
	// this long, or the wait for another node's upstream fetch that moved
	// less than 1 MiB/s over this long (and any such wait after 10 min).
	// Default 20 s.
	StallTimeout time.Duration
	// UpstreamTimeout bounds an upstream request up to its response
	// headers. Default 30 s.
	UpstreamTimeout time.Duration
	// BanFor is how long a peer that gave a wrong mapping is ignored.
	// Default 1 h.
	BanFor time.Duration
	// MaxBlobSize caps one blob. Default 64 GiB.
	MaxBlobSize int64
}

const (
	maxManifestSize   = 4 << 20
	maxManifestCached = 512
	maxTransports     = 256
	maxUpstreams      = 64
	maxProviders      = 16
	maxFlights        = 64               // blob fetches at once; more requests get 429
	maxClientConns    = 256              // HTTP connections at once
	waitMinRate       = 1 << 20          // bytes per second a fetch waited for must move
	maxWait           = 10 * time.Minute // longest wait for another node's fetch
	mapStreamsGlobal  = 64
	mapStreamsPerPeer = 4
	mapStreamTimeout  = 10 * time.Second
)

func (c Config) populate() (Config, error) {
	if c.Addr == "" {
		return c, errors.New("registry: no listen address")
	}
	if _, err := netip.ParseAddrPort(c.Addr); err != nil {
		return c, fmt.Errorf("registry: listen address %q: want ip:port, e.g. 127.0.0.1:5000", c.Addr)
	}
	if c.Dir == "" || c.Node == nil {
		return c, errors.New("registry: Dir and Node are required")
	}
	if c.Upstream == "" {
		c.Upstream = DefaultUpstream
	}
	u, err := url.Parse(c.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
		return c, fmt.Errorf("registry: upstream %q: want http(s)://host[:port], e.g. %s", c.Upstream, DefaultUpstream)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Transport == nil {
		c.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if c.ManifestTTL == 0 {
		c.ManifestTTL = 30 * time.Second
	}
	if c.LookupTimeout == 0 {
		c.LookupTimeout = 5 * time.Second
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = 20 * time.Second
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = 30 * time.Second
	}
	if c.BanFor == 0 {
		c.BanFor = time.Hour
	}
	if c.MaxBlobSize == 0 {
		c.MaxBlobSize = 64 << 30
	}
	if c.ManifestTTL < 0 || c.LookupTimeout < 0 || c.StallTimeout < 0 || c.UpstreamTimeout < 0 || c.BanFor < 0 || c.MaxBlobSize < 0 {
		return c, errors.New("registry: negative durations or sizes")
	}
	return c, nil
}
