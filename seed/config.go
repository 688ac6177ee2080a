package seed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/shoal-p2p/shoal/gateway"
	"github.com/shoal-p2p/shoal/swarm"
)

// Config configures a Node. The zero value means defaults; FillDefaults
// fills and checks it in one place.
type Config struct {
	// DataDir holds the key, the library, parity chunks, leaf layers,
	// manifests and the control API's token. Default: DefaultDataDir().
	DataDir string
	// Listen is the UDP address for QUIC and IPv8 datagrams.
	// Default: "0.0.0.0:7745" (DefaultPort); port 0 picks any.
	Listen string
	// API is the loopback TCP address of the control API.
	// Default: "127.0.0.1:7746"; "off" disables it; port 0 picks any.
	API string
	// Gateway is the TCP address of the read-only HTTP gateway
	// (docs/gateway.md). Default "127.0.0.1:7747" (if that is in use, the
	// node starts without a gateway and logs why); "off" disables it; a
	// non-loopback address serves other machines (no token is asked for
	// reads). Port 0 picks any.
	Gateway string
	// Transient marks a node started by one command for as long as it
	// runs (Status.Transient says so to clients, which then do not hand
	// it work that would outlive it).
	Transient bool
	// Bootstrap lists overlay peers to contact first (host:port).
	Bootstrap []string
	// LANDiscovery announces the node on the local network. Default off.
	LANDiscovery bool
	// NoUDPBatching turns off the overlay's batched UDP I/O (segmentation
	// and receive offload, see docs/overlay.md), for kernels or network
	// drivers that misbehave with it. Default off (batching on).
	NoUDPBatching bool
	// NoTCP turns off the TCP transport: by default the node also listens
	// on TCP at its UDP address and moves chunk streams to TLS over TCP
	// with peers that accept it there (docs/overlay.md, "TCP"); QUIC
	// carries everything else, and everything with peers that have no
	// TCP path (NATs, relays).
	NoTCP bool
	// NoDirectIO makes downloads write and read their output through the
	// page cache: by default whole chunks go to disk with direct I/O where
	// the file system supports it (docs/chunker.md), which saves the
	// kernel's copy into new page-cache pages but makes a lone writer wait
	// for the disk (slow disks, network file systems that accept O_DIRECT).
	NoDirectIO bool
	// Relay makes this node a relay for peers that cannot reach each
	// other directly (it forwards their end-to-end encrypted QUIC packets
	// within a budget per pair, see overlay/relay) and announces it in the
	// DHT. Default off: opt in on a reachable machine.
	Relay bool
	// UseRelays registers with relays found in the DHT and dials peers
	// through them when no direct address answers. Default off. Either
	// relay setting turns off UDP batching (docs/nat.md).
	UseRelays bool
	// UploadLimit and DownloadLimit cap chunk bytes per second; 0 means no
	// limit.
	UploadLimit, DownloadLimit int64
	// GatewayCache is the disk space, in bytes, the gateway's cache of
	// content read on demand may take (docs/gateway.md). Default
	// DefaultGatewayCache (4 GiB).
	GatewayCache int64
	// Registry, if set, is the TCP address (ip:port) on which the node
	// serves a pull-through OCI registry mirror (docs/registry.md).
	// Default off.
	Registry string
	// RegistryUpstream is the mirror's upstream registry URL.
	// Default https://registry-1.docker.io.
	RegistryUpstream string
	// RegistryAuth is a JSON file of upstream credentials (docs/registry.md).
	// Default none: anonymous pulls.
	RegistryAuth string
	// RecordTTL is how long the node's DHT provider records live.
	// Default 24 h; the node republishes at half of it.
	RecordTTL time.Duration
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger

	// WrapPacketConn, when set, receives the UDP socket the node binds on
	// Listen and returns the one the overlay uses instead. The drill
	// program (internal/drill/shoal-drill) sets it to add delay and loss;
	// shoal itself never does. On error the node closes the socket.
	WrapPacketConn func(net.PacketConn) (net.PacketConn, error)
	// WrapSource, when set, wraps the chunk source of every item the node
	// seeds. The drill program sets it to make a lying peer; shoal itself
	// never does.
	WrapSource func(swarm.Source) swarm.Source

	gatewayDefault bool // FillDefaults set Gateway
}

// FileConfig is the JSON config file. Every field is optional.
type FileConfig struct {
	Listen           string   `json:"listen,omitempty"`
	API              string   `json:"api,omitempty"`
	Gateway          string   `json:"gateway,omitempty"` // address, or "off"
	Bootstrap        []string `json:"bootstrap,omitempty"`
	LANDiscovery     bool     `json:"lan_discovery,omitempty"`
	NoUDPBatching    bool     `json:"no_udp_batching,omitempty"`
	NoTCP            bool     `json:"no_tcp,omitempty"`
	NoDirectIO       bool     `json:"no_direct_io,omitempty"`
	Relay            bool     `json:"relay,omitempty"`
	UseRelays        bool     `json:"use_relays,omitempty"`
	UploadLimit      Rate     `json:"upload_limit,omitempty"`      // bytes per second, or "10MiB/s"
	DownloadLimit    Rate     `json:"download_limit,omitempty"`    // bytes per second, or "10MiB/s"
	GatewayCache     Size     `json:"gateway_cache,omitempty"`     // bytes, or "4GiB"
	Registry         string   `json:"registry,omitempty"`          // ip:port of the registry mirror
	RegistryUpstream string   `json:"registry_upstream,omitempty"` // upstream registry URL
	RegistryAuth     string   `json:"registry_auth,omitempty"`     // upstream credentials file
}

// LoadConfigFile reads the JSON config file at path. A missing file gives
// the zero FileConfig and no error unless required (a path the user named).
func LoadConfigFile(path string, required bool) (FileConfig, error) {
	var fc FileConfig
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return fc, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fc, Errorf(ErrNotFound, "config file %s does not exist", path)
	}
	if err != nil {
		return fc, fmt.Errorf("reading config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return fc, Errorf(ErrBadRequest, "config file %s: %v", path, err)
	}
	return fc, nil
}

// Apply copies the file's settings into c where c leaves them unset.
func (fc FileConfig) Apply(c *Config) {
	if c.Listen == "" {
		c.Listen = fc.Listen
	}
	if c.API == "" {
		c.API = fc.API
	}
	if c.Gateway == "" {
		c.Gateway = fc.Gateway
	}
	if len(c.Bootstrap) == 0 {
		c.Bootstrap = fc.Bootstrap
	}
	c.LANDiscovery = c.LANDiscovery || fc.LANDiscovery
	c.NoUDPBatching = c.NoUDPBatching || fc.NoUDPBatching
	c.NoTCP = c.NoTCP || fc.NoTCP
	c.NoDirectIO = c.NoDirectIO || fc.NoDirectIO
	c.Relay = c.Relay || fc.Relay
	c.UseRelays = c.UseRelays || fc.UseRelays
	if c.UploadLimit == 0 {
		c.UploadLimit = int64(fc.UploadLimit)
	}
	if c.DownloadLimit == 0 {
		c.DownloadLimit = int64(fc.DownloadLimit)
	}
	if c.GatewayCache == 0 {
		c.GatewayCache = int64(fc.GatewayCache)
	}
	if c.Registry == "" {
		c.Registry = fc.Registry
	}
	if c.RegistryUpstream == "" {
		c.RegistryUpstream = fc.RegistryUpstream
	}
	if c.RegistryAuth == "" {
		c.RegistryAuth = fc.RegistryAuth
	}
}

// FillDefaults fills unset fields and checks the rest.
func (c *Config) FillDefaults() error {
	if c.DataDir == "" {
		d, err := DefaultDataDir()
		if err != nil {
			return err
		}
		c.DataDir = d
	}
	if c.Listen == "" {
		c.Listen = fmt.Sprintf("0.0.0.0:%d", DefaultPort)
	}
	if _, err := netip.ParseAddrPort(c.Listen); err != nil {
		return Errorf(ErrBadRequest, "listen address %q: want ip:port, e.g. 0.0.0.0:%d", c.Listen, DefaultPort)
	}
	if c.API == "" {
		c.API = fmt.Sprintf("127.0.0.1:%d", DefaultAPIPort)
	}
	if c.API != "off" {
		ap, err := netip.ParseAddrPort(c.API)
		if err != nil || !ap.Addr().IsLoopback() {
			return Errorf(ErrBadRequest, "API address %q: want a loopback ip:port, e.g. 127.0.0.1:%d", c.API, DefaultAPIPort)
		}
	}
	if c.Gateway == "" {
		c.Gateway, c.gatewayDefault = gateway.DefaultAddr, true
	}
	if c.Gateway != "off" {
		if _, err := netip.ParseAddrPort(c.Gateway); err != nil {
			return Errorf(ErrBadRequest, "gateway address %q: want ip:port (e.g. %s) or off", c.Gateway, gateway.DefaultAddr)
		}
	}
	for _, b := range c.Bootstrap {
		if _, err := netip.ParseAddrPort(b); err != nil {
			return Errorf(ErrBadRequest, "bootstrap address %q: want ip:port", b)
		}
	}
	if c.UploadLimit < 0 || c.DownloadLimit < 0 {
		return Errorf(ErrBadRequest, "rate limits must be 0 (none) or positive")
	}
	if c.GatewayCache < 0 {
		return Errorf(ErrBadRequest, "gateway_cache %d: want a positive size in bytes, e.g. 4GiB", c.GatewayCache)
	}
	if c.GatewayCache == 0 {
		c.GatewayCache = DefaultGatewayCache
	}
	if c.RecordTTL == 0 {
		c.RecordTTL = 24 * time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
