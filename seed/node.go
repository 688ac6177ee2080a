package seed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/dht"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
	"github.com/shoal-p2p/shoal/overlay/ipv8/community"
	"github.com/shoal-p2p/shoal/overlay/ipv8/discovery"
	"github.com/shoal-p2p/shoal/overlay/relay"
	"github.com/shoal-p2p/shoal/registry"
	"github.com/shoal-p2p/shoal/swarm"
)

// Node is a shoal node: one identity, one UDP socket (QUIC and IPv8
// datagrams), discovery, the DHT, the swarm's upload side, a chunk store
// and a library of what it seeds. New builds one, Run runs it, Close
// releases it; Start does all but Close. Its methods are safe for
// concurrent use.
type Node struct {
	// Set by New, then read-only.
	cfg      Config
	log      *slog.Logger
	kp       *identity.KeyPair
	lock     *os.File
	store    *chunker.Store
	lib      *library
	ov       *overlay.Node
	disc     *discovery.Community
	dht      *dht.Node
	srv      *swarm.Server
	rc       *relay.Conn // nil unless Config.Relay or UseRelays
	api      *http.Server
	apiConns *connCap
	apiLns   []net.Listener // bound by New, served by Run
	apiAddr  string
	started  time.Time
	ctx      context.Context // the node's lifetime; cancelled when Run stops
	cancel   context.CancelCauseFunc

	// The lifecycle: goRun queues goroutines until Run starts them, starts
	// them while Run runs, and drops them once Run is stopping.
	runMu     sync.Mutex
	runState  int                         // built, running, stopped
	pending   []func(ctx context.Context) // asked for before Run
	wg        sync.WaitGroup              // every goroutine the node starts; Run waits for them
	stop      chan struct{}               // closed by Close: Run stops
	ready     chan struct{}               // closed once Run started every goroutine
	runDone   chan struct{}               // closed when Run returns
	ran       bool                        // Run was entered (under runMu)
	stopOnce  sync.Once
	closeOnce sync.Once

	metrics Metrics
	prom    *prometheus.Registry // the node's /metrics
	mirror  *registry.Mirror     // nil unless Config.Registry
	book    addrBook             // addresses heard for peers, for dials
	gw      gwState              // the HTTP gateway (gateway.go)
	parity  parityQueue          // items whose parity is rebuilt (parity.go)

	advMu sync.Mutex
	adv   []netip.AddrPort // advertised in DHT records

	mu          sync.Mutex
	communities []*community.Community // started by StartCommunity
	seeding     map[chunker.ContentID]*chunker.Item
	active      map[chunker.ContentID]*activeDownload
	closed      bool
}

// activeDownload is a download in progress, as Status and Remove see it.
type activeDownload struct {
	name       string // from the link until the manifest is known
	background bool
	stage      atomic.Value  // string: StageSearching...
	done       chan struct{} // closed when the download has ended

	mu     sync.Mutex
	dl     *swarm.Download // nil until set
	cancel context.CancelCauseFunc
}

func (a *activeDownload) setDownload(dl *swarm.Download) {
	a.mu.Lock()
	a.dl = dl
	a.mu.Unlock()
}

func (a *activeDownload) download() *swarm.Download {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dl
}

// stop cancels the download with cause (it may not have started yet).
func (a *activeDownload) stop(cause error) {
	a.mu.Lock()
	c := a.cancel
	a.mu.Unlock()
	if c != nil {
		c(cause)
	}
}

// The node's run states.
const (
	stateBuilt = iota
	stateRunning
	stateStopped
)

// Start is New, then Run on a goroutine the node owns: it returns once
// every goroutine of the node has started, so that the node serves, and
// Close stops and waits for that Run. It is the convenience for callers
// that do not hold a context for the node's life (the CLI, tests).
func Start(cfg Config) (*Node, error) {
	n, err := New(cfg)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := n.Run(context.Background()); err != nil {
			n.log.Warn("node stopped", "err", err)
		}
	}()
	select {
	case <-n.ready:
	case <-n.runDone:
	}
	return n, nil
}

// New builds a node and starts no goroutine: it fills in cfg's defaults,
// opens and locks the data folder, loads the key, opens the store and the
// library, binds the UDP socket and, unless they are off, the listeners of
// the control API (its Unix socket always), the gateway and the registry
// mirror, and seeds the library again. Run serves; Close releases what New
// opened, whether Run ran or not. Calls that need the network (Get, the
// DHT part of Publish) make progress only while Run runs.
func New(cfg Config) (_ *Node, err error) {
	if err := cfg.FillDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data folder: %w", err)
	}
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger,
		started: time.Now(),
		seeding: map[chunker.ContentID]*chunker.Item{},
		active:  map[chunker.ContentID]*activeDownload{},
		stop:    make(chan struct{}),
		ready:   make(chan struct{}),
		runDone: make(chan struct{}),
		parity:  parityQueue{wake: make(chan struct{}, 1)},
	}
	n.ctx, n.cancel = context.WithCancelCause(context.Background())
	n.prom = n.newPrometheus()
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if n.kp, _, err = identity.LoadOrCreate(filepath.Join(cfg.DataDir, "key")); err != nil {
		return nil, err
	}
	if n.store, err = chunker.OpenStore(filepath.Join(cfg.DataDir, "store")); err != nil {
		return nil, err
	}
	if n.lib, err = openLibrary(cfg.DataDir); err != nil {
		return nil, err
	}
	n.srv = swarm.NewServer(swarm.ServerConfig{Logger: partsLogger(n.log), UploadRate: cfg.UploadLimit})
	pc, err := wrappedPacketConn(cfg)
	if err != nil {
		return nil, err
	}
	if pc == nil && (cfg.Relay || cfg.UseRelays) {
		if pc, err = net.ListenPacket("udp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("opening UDP %s: %w", cfg.Listen, err)
		}
	}
	if pc != nil {
		if pc, err = n.wrapRelay(pc); err != nil {
			pc.Close()
			return nil, err
		}
	}
	if n.ov, err = overlay.New(overlay.Config{ListenAddr: cfg.Listen, PacketConn: pc, NoBatching: cfg.NoUDPBatching, TCP: !cfg.NoTCP, KeyPair: n.kp, Logger: partsLogger(n.log)}); err != nil {
		if pc != nil {
			pc.Close()
		}
		return nil, fmt.Errorf("opening UDP %s: %w", cfg.Listen, err)
	}
	n.ov.Handle(swarm.Tag, func(ctx context.Context, c *overlay.Conn, s *quic.Stream) {
		n.srv.ServeStream(ctx, c.PeerID(), s)
	})
	n.ov.HandleTCP(swarm.Tag, func(ctx context.Context, peer identity.PeerID, s overlay.Stream) {
		n.srv.ServeStream(ctx, peer, s)
	})
	if err := n.startDiscoveryAndDHT(); err != nil {
		return nil, err
	}
	if cfg.Registry != "" {
		if err := n.startRegistry(); err != nil {
			return nil, err
		}
	}
	if err := n.startAPI(); err != nil {
		return nil, err
	}
	n.gw.budget = cfg.GatewayCache
	n.loadGatewayCache()
	n.goRun(n.keepGatewayCache)
	if err := n.startGateway(); err != nil {
		return nil, err
	}
	if !cfg.Transient {
		n.goRun(n.keepParity)
	}
	n.restoreLibrary()
	return n, nil
}

// Run starts every goroutine of the node (the overlay, discovery, the DHT
// and the bootstrapping that keeps it joined, relays, the registry mirror,
// the control API, the gateway, republishing, resumed and background
// downloads, and any asked for before Run) and serves until ctx ends or
// Close is called. It then stops downloads (they keep what they verified),
// the control API and every goroutine, and returns nil once all have
// exited. Run may be called once; after Close it returns ErrClosed. Close
// must still be called to release what New opened.
func (n *Node) Run(ctx context.Context) error {
	n.runMu.Lock()
	if n.runState != stateBuilt {
		n.runMu.Unlock()
		if n.ran {
			return errors.New("seed: Run called twice")
		}
		return ErrClosed
	}
	n.runState = stateRunning
	n.ran = true
	pending := n.pending
	n.pending = nil
	for _, f := range pending {
		n.startLocked(f)
	}
	n.runMu.Unlock()
	defer close(n.runDone)
	close(n.ready)
	select {
	case <-ctx.Done():
	case <-n.stop:
	}
	n.shutdown()
	return nil
}

// shutdown stops what Run (or a call before it) started, in order:
// downloads end with ErrClosed and keep what they verified, the control
// API closes, then the node's lifetime ends and every goroutine is awaited.
// It runs once.
func (n *Node) shutdown() {
	n.stopOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		active := make([]*activeDownload, 0, len(n.active))
		for _, a := range n.active {
			active = append(active, a)
		}
		n.mu.Unlock()

		n.stopAPI()
		for _, a := range active {
			a.stop(ErrClosed)
			<-a.done
		}
		n.stopGatewayDownloads()
		n.cancel(ErrClosed)
		n.runMu.Lock()
		n.runState = stateStopped // no goroutine starts from now on
		n.pending = nil
		n.runMu.Unlock()
		n.wg.Wait()
	})
}

// wrappedPacketConn binds Listen and hands the socket to
// Config.WrapPacketConn when set; otherwise it returns nil and the overlay
// binds the socket itself.
func wrappedPacketConn(cfg Config) (net.PacketConn, error) {
	if cfg.WrapPacketConn == nil {
		return nil, nil
	}
	pc, err := net.ListenPacket("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("opening UDP %s: %w", cfg.Listen, err)
	}
	c, err := cfg.WrapPacketConn(pc)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("wrapping UDP %s: %w", cfg.Listen, err)
	}
	return c, nil
}

// dhtCommunity carries the DHT's payloads as signed IPv8 messages in the
// DHT's community and hands verified ones to the DHT node.
type dhtCommunity struct {
	ep   *ipv8.Endpoint
	node *dht.Node // set once, before the community is registered
}

func (c *dhtCommunity) Framing(msgID byte) ipv8.Framing {
	if msgID == dht.IPv8MessageID {
		return ipv8.FramingSigned
	}
	return ipv8.FramingUnknown
}

func (c *dhtCommunity) HandleMessage(m *ipv8.Message) { c.node.HandleMessage(m.From, m.Key, m.Payload) }

func (c *dhtCommunity) Send(to netip.AddrPort, payload []byte) error {
	return c.ep.Send(to, ipv8.CommunityID(dht.CommunityID), dht.IPv8MessageID, payload)
}

func (n *Node) startDiscoveryAndDHT() error {
	var boot []netip.AddrPort
	for _, b := range n.cfg.Bootstrap {
		boot = append(boot, netip.MustParseAddrPort(b)) // checked by FillDefaults
	}
	ep := n.ov.Endpoint()
	disc, err := discovery.New(ep, discovery.Config{
		Bootstrap: boot,
		LAN:       discovery.LANConfig{Enabled: n.cfg.LANDiscovery},
		Logger:    partsLogger(n.log),
	})
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	n.disc = disc
	com := &dhtCommunity{ep: ep}
	var addrs []netip.AddrPort
	if la := n.ov.LocalAddr(); !la.Addr().IsUnspecified() {
		addrs = []netip.AddrPort{la}
	}
	n.dht, err = dht.New(dht.Config{Addrs: addrs, RecordTTL: n.cfg.RecordTTL, Logger: partsLogger(n.log)}, n.kp, com)
	if err != nil {
		return fmt.Errorf("dht: %w", err)
	}
	com.node = n.dht
	if err := ep.Register(ipv8.CommunityID(dht.CommunityID), com); err != nil {
		return fmt.Errorf("dht community: %w", err)
	}
	n.goRun(func(ctx context.Context) { n.ov.Run(ctx) })
	n.goRun(func(ctx context.Context) { n.dht.Run(ctx) })
	n.goRun(func(ctx context.Context) { disc.Run(ctx) })
	n.goRun(func(ctx context.Context) { n.keepDHTJoined(ctx, boot) })
	n.goRun(n.keepRelays)
	return nil
}

// goRun runs f, with the node's lifetime, on a goroutine Run owns and
// waits for: before Run it is queued for Run to start, once Run stops it is
// dropped (the node's lifetime has ended anyway).
func (n *Node) goRun(f func(ctx context.Context)) {
	n.runMu.Lock()
	defer n.runMu.Unlock()
	switch n.runState {
	case stateBuilt:
		n.pending = append(n.pending, f)
	case stateRunning:
		n.startLocked(f)
	}
}

// startLocked starts f; runMu is held and the node is running, so that
// shutdown's Wait cannot have begun.
func (n *Node) startLocked(f func(ctx context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.ctx)
	}()
}

// keepDHTJoined bootstraps the DHT from the configured addresses and, while
// its routing table is empty, from the peers discovery finds.
func (n *Node) keepDHTJoined(ctx context.Context, boot []netip.AddrPort) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		n.refreshAdvertised()
		if n.dht.TableSize() == 0 {
			addrs := append([]netip.AddrPort(nil), boot...)
			for _, p := range n.disc.Peers() {
				addrs = append(addrs, p.Addr)
			}
			if len(addrs) > 0 {
				bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				if err := n.dht.Bootstrap(bctx, addrs); err != nil {
					n.log.Debug("dht bootstrap", "err", err)
				}
				cancel()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refreshAdvertised puts the advertised addresses in the DHT's records
// and, when they changed, announces every seeded item again so that the
// records peers hold carry them.
func (n *Node) refreshAdvertised() {
	adv := n.advertised()
	n.advMu.Lock()
	same := slices.Equal(adv, n.adv)
	n.adv = adv
	n.advMu.Unlock()
	if same {
		return
	}
	n.dht.SetAddrs(adv)
	n.mu.Lock()
	ids := make([]chunker.ContentID, 0, len(n.seeding))
	for id := range n.seeding {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	for _, id := range ids {
		n.announce(id)
	}
}

// BootstrapDHT joins the DHT through addrs (for example the peers of a
// link) and waits for the join to end or ctx.
func (n *Node) BootstrapDHT(ctx context.Context, addrs []netip.AddrPort) error {
	for _, a := range addrs {
		n.disc.WalkTo(a)
	}
	return n.dht.Bootstrap(ctx, addrs)
}

// Close stops the node, as Run does when its ctx ends, and waits for Run
// to return: downloads in progress keep what they verified (the next Get,
// or New and Run for a background one, resumes them), the control API
// closes. Then it releases what New opened: the socket, the listeners, the
// seeded files and the data folder's lock. Close is idempotent; every call
// returns after every goroutine of the node has exited.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		n.runMu.Lock()
		ran := n.ran
		if !ran {
			n.runState = stateStopped // a later Run returns ErrClosed
		}
		n.runMu.Unlock()
		if ran {
			<-n.runDone
		} else {
			n.shutdown()
		}
		for _, ln := range n.apiLns {
			ln.Close()
		}
		if n.gw.g != nil {
			n.gw.g.Close()
		}
		if n.mirror != nil {
			n.mirror.Close()
		}
		if n.ov != nil {
			n.ov.Close()
		}
		if n.srv != nil {
			n.srv.Close()
		}
		n.mu.Lock()
		for id, it := range n.seeding {
			it.Close()
			delete(n.seeding, id)
		}
		n.mu.Unlock()
		if n.lock != nil {
			n.lock.Close()
		}
	})
	return nil
}

// PeerID returns the node's PeerID.
func (n *Node) PeerID() identity.PeerID { return n.kp.PeerID() }

// Addr returns the UDP address the node listens on.
func (n *Node) Addr() netip.AddrPort { return n.ov.LocalAddr() }

// APIAddr returns the control API's address, or "" when it is off.
func (n *Node) APIAddr() string { return n.apiAddr }

// Metrics returns the node's counters.
func (n *Node) Metrics() *Metrics { return &n.metrics }
