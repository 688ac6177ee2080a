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
	ln           *quic.EarlyListener
	tcp          *tcpTransport // nil without Config.TCP or when its port was busy
	qconf        *quic.Config
	clientTLS    *tls.Config // cloned per dial
	ep           *ipv8.Endpoint
	local        netip.AddrPort
	dgrams       chan datagram   // non-QUIC packets, from demuxConn to deliverLoop
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
	ndials     int        // dials in progress, including those to unknown peers
	adm        admissions // incoming handshakes and connections
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
	var tcpLn net.Listener // bound with the UDP socket when New binds it
	if pc == nil {
		udp, ln, err := listenPair(cfg.ListenAddr, cfg.TCP)
		if err != nil {
			return nil, err
		}
		pc, tcpLn = udp, ln
	}
	closeAll := func() {
		pc.Close()
		if tcpLn != nil {
			tcpLn.Close()
		}
	}
	if udp, ok := pc.(*net.UDPConn); ok {
		tuneBuffers(udp, cfg.SocketBuffer, cfg.Logger)
		if !cfg.NoBatching {
			pc = udpbatch.New(udp)
		}
	}
	cert, err := newCertificate(cfg.KeyPair)
	if err != nil {
		closeAll()
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
		adm:      newAdmissions(),
	}
	if ap, ok := addrPort(pc.LocalAddr()); ok {
		n.local = ap
	}
	n.ep, err = ipv8.NewEndpoint(datagramWriter{n}, cfg.IPv8)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("overlay: IPv8 endpoint: %w", err)
	}
	n.SetDatagramHandler(cfg.OnDatagram)
	n.ctx, n.cancel = context.WithCancelCause(context.Background())
	serverTLS, clientTLS := tlsConfigs(cert)
	n.clientTLS = clientTLS
	resetKey := quic.StatelessResetKey(blake3.Sum256(append([]byte("shoal stateless reset key v1"), n.kp.SecretKey()...)))
	n.dgrams = make(chan datagram, datagramQueue)
	n.tr = &quic.Transport{
		Conn:                n.quicConn(pc),
		StatelessResetKey:   &resetKey,
		ConnContext:         n.admit,
		VerifySourceAddress: n.verifySource,
	}
	// The early listener hands over a connection once its ClientHello was
	// read, so that a handshake can be ended for another address's
	// (admissions); acceptLoop registers it when the handshake completes.
	n.ln, err = n.tr.ListenEarly(serverTLS, n.qconf)
	if err != nil {
		n.cancel(ErrClosed)
		n.tr.Close()
		closeAll()
		return nil, fmt.Errorf("overlay: starting QUIC listener: %w", err)
	}
	n.listenTCP(serverTLS, tcpLn)
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
	go n.deliverLoop()
	if n.tcp != nil {
		n.wg.Add(1)
		go n.tcp.acceptLoop(n)
	}
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
		if n.tcp != nil {
			n.tcp.shutdown()
		}
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
func (n *Node) Stats() Stats {
	s := n.stats.snapshot()
	if n.tcp != nil {
		s.TCP = n.tcp.stats()
	}
	n.mu.Lock()
	s.Handshakes = n.adm.handshakes
	s.Evicted = n.adm.evicted
	n.mu.Unlock()
	return s
}

// admission is an incoming handshake's reserved slot. The handshake part
// (Node.adm's handshake counts) is settled when the connection registers, its
// handshake fails or another address's handshake takes its place, whichever
// comes first; the per-IP part (inbound) is released when quic-go cancels
// the connection's context (handshake failed or connection closed).
type admission struct {
	h       *handshake // guarded by Node.mu
	qc      *quic.Conn // once accepted; guarded by Node.mu
	evicted bool       // guarded by Node.mu
}

// abort ends the handshake once its connection was accepted (quic-go
// offers no way to end it before); called with Node.mu held.
func (adm *admission) abort() bool {
	if adm.qc == nil || adm.evicted {
		return false
	}
	adm.evicted = true
	go adm.qc.CloseWithError(CodeNormal, "handshake ended: too many in progress")
	return true
}

type admissionKey struct{}

// refusal is why an incoming handshake was refused; it names a counter.
type refusal uint8

const (
	refusedConns      refusal = iota // the incoming share of MaxConns is taken
	refusedHandshakes                // MaxHandshakes in progress
	refusedIPHandshakes
	refusedIPConns
	refusedPeerConns
)

// admit is quic-go's ConnContext hook: it refuses handshakes beyond the
// caps before any state is spent on them (the peer gets QUIC's
// CONNECTION_REFUSED) and reserves a slot for the others. Incoming
// connections may use MaxConns-DialReserve slots; the rest are for our
// own dials.
func (n *Node) admit(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
	ip := netip.Addr{}
	if ap, ok := addrPort(ci.RemoteAddr); ok {
		ip = hostOf(ap.Addr())
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	adm := &admission{}
	h, why, ok := n.adm.admit(&n.cfg, ip, n.usedLocked(), adm.abort)
	if !ok {
		n.stats.refuse(why)
		return nil, ErrConnLimit
	}
	adm.h = h
	// quic-go cancels ctx when the handshake fails or the connection
	// closes; a registered connection has settled its handshake by then.
	context.AfterFunc(ctx, func() {
		n.mu.Lock()
		n.settleLocked(adm)
		n.adm.release(ip)
		n.mu.Unlock()
	})
	return context.WithValue(ctx, admissionKey{}, adm), nil
}

// verifySource is quic-go's VerifySourceAddress hook: above RetryAbove
// handshakes in progress, a new one must first answer a QUIC Retry from
// its source address, so spoofed floods hold no handshake state.
func (n *Node) verifySource(net.Addr) bool {
	n.mu.Lock()
	load := n.adm.handshakes >= n.cfg.RetryAbove
	n.mu.Unlock()
	if load {
		n.stats.retries.Add(1)
	}
	return load
}

// settleLocked releases adm's handshake slot once.
func (n *Node) settleLocked(adm *admission) {
	if adm != nil {
		n.adm.settle(adm.h)
	}
}

// usedLocked counts the connection slots in use: open connections, dials
// and incoming handshakes in progress.
func (n *Node) usedLocked() int { return n.nconns + n.ndials + n.adm.handshakes }

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
		adm, _ := qc.Context().Value(admissionKey{}).(*admission)
		n.mu.Lock()
		if adm != nil {
			adm.qc = qc
		}
		n.wg.Add(1) // under n.mu: Close waits only after setting n.closed
		closed := n.closed
		n.mu.Unlock()
		if closed {
			n.wg.Done()
			qc.CloseWithError(CodeNodeClosing, "node closing")
			return
		}
		// One goroutine per handshake in progress: at most MaxHandshakes.
		go func() {
			defer n.wg.Done()
			select {
			case <-qc.HandshakeComplete():
			case <-qc.Context().Done():
				return
			}
			if _, err := n.register(qc, false); err != nil {
				n.log.Debug("overlay incoming connection dropped", "addr", qc.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// listenPair binds the UDP socket at addr and, with tcp, a TCP listener on
// the same IP and port. For port 0 it tries other ports until both bind:
// the TCP port of a random UDP port is sometimes taken. For a fixed port a
// busy TCP port leaves ln nil (the node then runs on QUIC alone).
func listenPair(addr string, tcp bool) (udp *net.UDPConn, ln net.Listener, err error) {
	for attempt := 0; ; attempt++ {
		if udp, err = listenUDP(addr); err != nil || !tcp {
			return udp, nil, err
		}
		if ln, err = net.Listen("tcp", udp.LocalAddr().String()); err == nil {
			return udp, ln, nil
		}
		if ua, rerr := net.ResolveUDPAddr("udp", addr); rerr != nil || ua.Port != 0 || attempt == 7 {
			return udp, nil, nil
		}
		udp.Close()
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

// Stats counts notable events since the node started. The metrics owner
// exports it; every refusal and drop has one reason counter.
type Stats struct {
	Conns      int    // open connections now
	Handshakes int    // incoming handshakes in progress now
	Dials      uint64 // QUIC handshakes this node started
	// Incoming handshakes refused, by reason (Refused is their sum).
	Refused             uint64
	RefusedConns        uint64 // the incoming share of MaxConns (MaxConns-DialReserve) was taken
	RefusedHandshakes   uint64 // MaxHandshakes in progress
	RefusedIPHandshakes uint64 // MaxHandshakesPerIP in progress from the address
	RefusedIPConns      uint64 // MaxConnsPerIP from the address
	RefusedPeerConns    uint64 // MaxConnsPerPeer of the identity, after the handshake
	Retries             uint64 // handshakes asked to prove their address (QUIC Retry) under load
	Evicted             uint64 // handshakes ended so that another address's could start (MaxHandshakes in progress)
	Datagrams           uint64 // non-QUIC datagrams delivered to the handler
	// Non-QUIC packets dropped, by reason (DatagramsDrop is their sum).
	DatagramsDrop     uint64
	DatagramsDropByte uint64 // first byte not 0x00 (not IPv8), or empty
	DatagramsDropAddr uint64 // source not a UDP address
	// DatagramsDropQueue: the handler fell behind and its queue (1,024
	// packets) was full. quic-go's own 32-packet buffer in front of the
	// reader drops uncounted only if the reader itself stalls.
	DatagramsDropQueue uint64
	StreamsHandled     uint64 // incoming streams given to a handler
	StreamsBadTag      uint64 // incoming streams reset for an unknown or missing tag
	TCP                TCPStats
}

type counters struct {
	conns              atomic.Int64
	dials              atomic.Uint64
	refused            [refusedPeerConns + 1]atomic.Uint64
	retries            atomic.Uint64
	datagrams          atomic.Uint64
	datagramsDropByte  atomic.Uint64
	datagramsDropAddr  atomic.Uint64
	datagramsDropQueue atomic.Uint64
	streamsHandled     atomic.Uint64
	streamsBadTag      atomic.Uint64
}

func (c *counters) refuse(why refusal) { c.refused[why].Add(1) }

func (c *counters) snapshot() Stats {
	s := Stats{
		Conns:               int(c.conns.Load()),
		Dials:               c.dials.Load(),
		RefusedConns:        c.refused[refusedConns].Load(),
		RefusedHandshakes:   c.refused[refusedHandshakes].Load(),
		RefusedIPHandshakes: c.refused[refusedIPHandshakes].Load(),
		RefusedIPConns:      c.refused[refusedIPConns].Load(),
		RefusedPeerConns:    c.refused[refusedPeerConns].Load(),
		Retries:             c.retries.Load(),
		Datagrams:           c.datagrams.Load(),
		DatagramsDropByte:   c.datagramsDropByte.Load(),
		DatagramsDropAddr:   c.datagramsDropAddr.Load(),
		DatagramsDropQueue:  c.datagramsDropQueue.Load(),
		StreamsHandled:      c.streamsHandled.Load(),
		StreamsBadTag:       c.streamsBadTag.Load(),
	}
	s.Refused = s.RefusedConns + s.RefusedHandshakes + s.RefusedIPHandshakes + s.RefusedIPConns + s.RefusedPeerConns
	s.DatagramsDrop = s.DatagramsDropByte + s.DatagramsDropAddr + s.DatagramsDropQueue
	return s
}
