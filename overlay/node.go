package overlay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/internal/udpbatch"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
	"github.com/zeebo/blake3"
)

// Node is one shoal endpoint: one UDP socket carrying QUIC connections to
// peers and non-QUIC datagrams. Its methods are safe for concurrent use.
type Node struct {
	// Set by New, then read-only.
	cfg          Config
	log          *slog.Logger
	kp           *identity.KeyPair
	id           identity.PeerID
	pc           net.PacketConn
	tr           *quic.Transport
	ln           *quic.Listener
	qconf        *quic.Config
	clientTLS    *tls.Config // cloned per dial
	ep           *ipv8.Endpoint
	local        netip.AddrPort
	ctx          context.Context // lifetime; cancelled with ErrClosed by Close
	cancel       context.CancelCauseFunc
	wg           sync.WaitGroup // every goroutine of the node: Run's, dials', connections'
	shutdownOnce sync.Once
	closeOnce    sync.Once

	// Set at run time, read by the goroutines that deliver.
	handlersMu sync.RWMutex
	handlers   map[byte]Handler
	onDatagram atomic.Pointer[func(netip.AddrPort, []byte)]
	stats      counters

	// mu guards the connection table, the dials in progress, the event
	// queue and closed.
	mu         sync.Mutex
	conns      map[identity.PeerID][]*Conn // live connections per peer
	nconns     int                         // sum of len(conns[*])
	dials      map[dialKey]*dialCall
	ndials     int // dials in progress, including those to unknown peers
	nadmit     int // incoming handshakes admitted but not yet registered
	events     []PeerEvent
	delivering bool // some goroutine is delivering events
	running    bool // Run has been called
	closed     bool
}

// New binds the socket (or takes Config.PacketConn) and sets up QUIC on it.
// It starts no goroutine of its own: Run does. Outgoing dials work before
// Run; incoming connections and datagrams are taken once Run has started.
// The caller must call Close, which releases the socket. When New fails, it
// has closed Config.PacketConn.
func New(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		if cfg.PacketConn != nil {
			cfg.PacketConn.Close()
		}
		return nil, err
	}
	pc := cfg.PacketConn
	if pc == nil {
		udp, err := listenUDP(cfg.ListenAddr)
		if err != nil {
			return nil, err
		}
		pc = udp
	}
	if udp, ok := pc.(*net.UDPConn); ok {
		tuneBuffers(udp, cfg.SocketBuffer, cfg.Logger)
		if !cfg.NoBatching {
			pc = udpbatch.New(udp)
		}
	}
	cert, err := newCertificate(cfg.KeyPair)
	if err != nil {
		pc.Close()
		return nil, err
	}
	n := &Node{
		cfg:      cfg,
		log:      cfg.Logger,
		kp:       cfg.KeyPair,
		id:       cfg.KeyPair.PeerID(),
		pc:       pc,
		qconf:    cfg.quicConfig(),
		handlers: make(map[byte]Handler),
		conns:    make(map[identity.PeerID][]*Conn),
		dials:    make(map[dialKey]*dialCall),
	}
	if ap, ok := addrPort(pc.LocalAddr()); ok {
		n.local = ap
	}
	n.ep, err = ipv8.NewEndpoint(datagramWriter{n}, cfg.IPv8)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("overlay: IPv8 endpoint: %w", err)
	}
	n.SetDatagramHandler(cfg.OnDatagram)
	n.ctx, n.cancel = context.WithCancelCause(context.Background())
	serverTLS, clientTLS := tlsConfigs(cert)
	n.clientTLS = clientTLS
	resetKey := quic.StatelessResetKey(blake3.Sum256(append([]byte("shoal stateless reset key v1"), n.kp.SecretKey()...)))
	n.tr = &quic.Transport{
		Conn:              pc,
		StatelessResetKey: &resetKey,
		ConnContext:       n.admit,
	}
	n.ln, err = n.tr.Listen(serverTLS, n.qconf)
	if err != nil {
		n.cancel(ErrClosed)
		n.tr.Close()
		pc.Close()
		return nil, fmt.Errorf("overlay: starting QUIC listener: %w", err)
	}
	// quic-go drops non-QUIC packets until the first ReadNonQUICPacket
	// call; make that call now, so none is lost before datagramLoop runs.
	done, stop := context.WithCancel(context.Background())
	stop()
	n.tr.ReadNonQUICPacket(done, nil)
	return n, nil
}

// Run starts the node's goroutines (accepting connections, reading
// datagrams, the IPv8 endpoint's housekeeping) and owns them: when ctx is
// done or Close is called, it closes every connection (telling peers),
// stops accepting and returns nil once every goroutine of the node has
// exited, including dials and stream handlers. The socket stays open until
// Close. Run may be called once; it returns ErrClosed after Close.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	switch {
	case n.closed:
		n.mu.Unlock()
		return ErrClosed
	case n.running:
		n.mu.Unlock()
		return errors.New("overlay: Run called twice")
	}
	n.running = true
	n.wg.Add(3) // under mu with closed false: shutdown has not begun waiting
	n.mu.Unlock()
	go n.acceptLoop()
	go n.datagramLoop()
	go func() {
		defer n.wg.Done()
		n.ep.Run(n.ctx) // housekeeping until shutdown; returns ErrClosed
	}()
	n.log.Info("overlay node running", "peer", n.id.Short(), "addr", n.local.String())
	select {
	case <-ctx.Done():
	case <-n.ctx.Done():
	}
	n.shutdown()
	return nil
}

// shutdown closes every connection and the listener, cancels the node's
// lifetime and waits for its goroutines. It is idempotent and concurrent
// callers all return after the goroutines have exited.
func (n *Node) shutdown() {
	n.shutdownOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		var all []*Conn
		for _, cs := range n.conns {
			all = append(all, cs...)
		}
		n.mu.Unlock()
		n.cancel(ErrClosed)
		n.ln.Close()
		for _, c := range all {
			c.qc.CloseWithError(CodeNodeClosing, "node closing")
		}
		n.tr.Close()
	})
	n.wg.Wait()
}

// Close stops the node as Run does when its ctx ends, waits for every
// goroutine, then closes the socket. It is idempotent; later calls return
// nil.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		n.shutdown()
		err = n.pc.Close()
		n.log.Info("overlay node closed", "peer", n.id.Short())
	})
	return err
}

// PeerID returns the node's own PeerID.
func (n *Node) PeerID() identity.PeerID { return n.id }

// PublicKey returns the node's own public key.
func (n *Node) PublicKey() identity.PublicKey { return n.kp.Public() }

// Endpoint returns the node's IPv8 datagram endpoint. It sends through
// WriteDatagram and, unless Config.OnDatagram or SetDatagramHandler says
// otherwise, receives every datagram starting with 0x00. Register
// communities on it.
func (n *Node) Endpoint() *ipv8.Endpoint { return n.ep }

// LocalAddr returns the bound UDP address.
func (n *Node) LocalAddr() netip.AddrPort { return n.local }

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats { return n.stats.snapshot() }

// admission is an incoming handshake's reserved connection slot. It is
// settled (the slot released) when the connection registers or when its
// handshake fails, whichever comes first.
type admission struct{ settled bool } // guarded by Node.mu

type admissionKey struct{}

// admit is quic-go's ConnContext hook: it refuses handshakes beyond
// MaxConns before any state is spent on them (the peer gets QUIC's
// CONNECTION_REFUSED) and reserves a slot for the others.
func (n *Node) admit(ctx context.Context, _ *quic.ClientInfo) (context.Context, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	if n.usedLocked() >= n.cfg.MaxConns {
		n.stats.refused.Add(1)
		return nil, ErrConnLimit
	}
	n.nadmit++
	adm := &admission{}
	ctx = context.WithValue(ctx, admissionKey{}, adm)
	// quic-go cancels ctx when the handshake fails or the connection
	// closes; by then a registered connection has settled already.
	context.AfterFunc(ctx, func() {
		n.mu.Lock()
		n.settleLocked(adm)
		n.mu.Unlock()
	})
	return ctx, nil
}

// settleLocked releases adm's slot once.
func (n *Node) settleLocked(adm *admission) {
	if adm != nil && !adm.settled {
		adm.settled = true
		n.nadmit--
	}
}

// usedLocked counts the connection slots in use: open connections, dials
// and incoming handshakes in progress.
func (n *Node) usedLocked() int { return n.nconns + n.ndials + n.nadmit }

// acceptLoop registers incoming connections until the listener closes.
func (n *Node) acceptLoop() {
	defer n.wg.Done()
	for {
		qc, err := n.ln.Accept(n.ctx)
		if err != nil {
			if n.ctx.Err() == nil && !errors.Is(err, quic.ErrServerClosed) {
				n.log.Warn("overlay accept loop stopped", "err", err)
			}
			return
		}
		if _, err := n.register(qc, false); err != nil {
			n.log.Debug("overlay incoming connection dropped", "remote", qc.RemoteAddr().String(), "err", err)
		}
	}
}

func listenUDP(addr string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("overlay: listen address %q: %w", addr, err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("overlay: binding %s: %w", addr, err)
	}
	return c, nil
}

// addrPort converts a UDP net.Addr, unmapping IPv4-in-IPv6.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	if ua, ok := a.(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// Stats counts notable events since the node started.
type Stats struct {
	Conns          int    // open connections now
	Refused        uint64 // incoming handshakes refused at the connection limit
	Datagrams      uint64 // non-QUIC datagrams delivered to the handler
	DatagramsDrop  uint64 // non-QUIC packets dropped: first byte not 0x00
	StreamsHandled uint64 // incoming streams given to a handler
	StreamsBadTag  uint64 // incoming streams reset for an unknown or missing tag
}

type counters struct {
	conns          atomic.Int64
	refused        atomic.Uint64
	datagrams      atomic.Uint64
	datagramsDrop  atomic.Uint64
	streamsHandled atomic.Uint64
	streamsBadTag  atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Conns:          int(c.conns.Load()),
		Refused:        c.refused.Load(),
		Datagrams:      c.datagrams.Load(),
		DatagramsDrop:  c.datagramsDrop.Load(),
		StreamsHandled: c.streamsHandled.Load(),
		StreamsBadTag:  c.streamsBadTag.Load(),
	}
}
