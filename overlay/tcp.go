package overlay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	yamux "github.com/libp2p/go-yamux/v5"
	"github.com/quic-go/quic-go"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

// ALPNTCP is the TLS application protocol of the TCP transport: TLS 1.3,
// then yamux sessions whose streams carry the same tagged protocols as
// QUIC streams. See the package doc, "TCP".
const ALPNTCP = "shoal-tcp/1"

// ErrNoTCP means a stream could not go over TCP: the node has no TCP
// transport, or no session to the peer is up.
var ErrNoTCP = errors.New("overlay: no TCP session to peer")

// Stream is one bidirectional stream, over QUIC (*quic.Stream satisfies
// it) or over a TCP session. Close ends the send side cleanly; CancelRead
// and CancelWrite abort with an application error code (on TCP either
// aborts both directions and sends the code with a yamux reset).
type Stream interface {
	io.Reader
	io.Writer
	Close() error
	CancelRead(quic.StreamErrorCode)
	CancelWrite(quic.StreamErrorCode)
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// TCPHandler serves one incoming TCP stream whose tag byte has been read,
// as Handler does for QUIC streams: ctx ends when the session closes, and
// after the handler returns the node closes s's write side and stops
// reading.
type TCPHandler func(ctx context.Context, peer identity.PeerID, s Stream)

// tcpStream adapts a yamux stream to Stream.
type tcpStream struct {
	*yamux.Stream

	// tag is an opened stream's tag byte while it is not yet sent: it
	// goes with the first Write (a request and its tag in one yamux
	// frame: one TLS record and one write system call fewer per chunk
	// request), or on its own before a Read or Close, which need the
	// peer to know the stream's protocol.
	mu  sync.Mutex
	tag []byte
}

// maxTagMerge is the largest first Write that is copied behind the tag
// into one frame; a larger one is sent after the tag, as its own frame.
const maxTagMerge = 4 << 10

func (s *tcpStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	tag := s.tag
	s.tag = nil
	if tag == nil || len(p) > maxTagMerge {
		err := s.sendTagLocked(tag)
		s.mu.Unlock()
		if err != nil {
			return 0, err
		}
		return s.Stream.Write(p)
	}
	defer s.mu.Unlock()
	n, err := s.Stream.Write(append(tag, p...))
	return max(n-len(tag), 0), err
}

// sendTagLocked writes tag (if any) on its own; s.mu is held.
func (s *tcpStream) sendTagLocked(tag []byte) error {
	if tag == nil {
		return nil
	}
	_, err := s.Stream.Write(tag)
	return err
}

// flushTag sends the tag if the first Write has not.
func (s *tcpStream) flushTag() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tag := s.tag
	s.tag = nil
	return s.sendTagLocked(tag)
}

func (s *tcpStream) Read(p []byte) (int, error) {
	if err := s.flushTag(); err != nil {
		return 0, err
	}
	return s.Stream.Read(p)
}

// Close closes the write side only, as QUIC's Close does; the response
// can still be read.
func (s *tcpStream) Close() error {
	if err := s.flushTag(); err != nil {
		return err
	}
	return s.CloseWrite()
}

// CancelRead aborts the stream in both directions with code: yamux has no
// way to ask the peer to stop sending that leaves our side open.
func (s *tcpStream) CancelRead(code quic.StreamErrorCode) { s.ResetWithError(uint32(code)) }

// CancelWrite aborts the stream in both directions with code.
func (s *tcpStream) CancelWrite(code quic.StreamErrorCode) { s.ResetWithError(uint32(code)) }

// tcpTransport is the TCP side of a Node: one listener on the UDP
// socket's address and port, TLS 1.3, one yamux session per peer.
type tcpTransport struct {
	ln        net.Listener
	serverTLS *tls.Config
	mem       memBudget // node-wide receive buffer budget

	mu       sync.Mutex
	sessions map[identity.PeerID][]*tcpSession
	nsess    int
	adm      admissions                   // incoming handshakes and sessions
	dialing  map[identity.PeerID]bool     // background dials in progress
	failed   map[netip.AddrPort]time.Time // addresses whose dial failed, until
	handlers map[byte]TCPHandler

	sessionsUp, dials, dialFails, handshakeFails, streams atomic.Uint64
	refused                                               [refusedPeerConns + 1]atomic.Uint64
	memRefused                                            atomic.Uint64
}

type tcpSession struct {
	s        *yamux.Session
	peer     identity.PeerID
	remote   netip.AddrPort
	outbound bool
	ip       netip.Addr // counted in inbound, for incoming sessions
	ctx      context.Context
	cancel   context.CancelFunc
}

// tcpRetry is how long an address whose TCP dial failed is left alone.
const tcpRetry = time.Minute

// listenTCP sets up the TCP transport on ln, or binds a listener next to
// the UDP socket when ln is nil. A busy port is not fatal: the node then
// runs on QUIC alone, and says so.
func (n *Node) listenTCP(serverTLS *tls.Config, ln net.Listener) {
	if !n.cfg.TCP || !n.local.IsValid() {
		if ln != nil {
			ln.Close()
		}
		return
	}
	t := &tcpTransport{
		sessions: make(map[identity.PeerID][]*tcpSession),
		adm:      newAdmissions(),
		dialing:  make(map[identity.PeerID]bool),
		failed:   make(map[netip.AddrPort]time.Time),
		handlers: make(map[byte]TCPHandler),
		mem:      memBudget{max: n.cfg.MaxTCPBuffer},
	}
	t.serverTLS = serverTLS.Clone()
	t.serverTLS.NextProtos = []string{ALPNTCP}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", n.local.String()); err != nil {
			n.log.Warn("overlay: no TCP listener, bulk streams use QUIC only", "addr", n.local.String(), "err", err)
			return
		}
	}
	t.ln = ln
	n.tcp = t
}

// TCPAddr returns the TCP listener's address, or an invalid AddrPort when
// the node has no TCP transport.
func (n *Node) TCPAddr() netip.AddrPort {
	if n.tcp == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(n.tcp.ln.Addr().String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// HandleTCP registers h for TCP streams tagged tag (nil removes it). It is
// a no-op on a node without TCP.
func (n *Node) HandleTCP(tag byte, h TCPHandler) {
	if n.tcp == nil {
		return
	}
	n.tcp.mu.Lock()
	defer n.tcp.mu.Unlock()
	if h == nil {
		delete(n.tcp.handlers, tag)
		return
	}
	n.tcp.handlers[tag] = h
}

// OpenBulkStream opens a stream tagged tag to c's peer for bulk transfer:
// over the TCP session to that peer when one is up, otherwise over c. In
// the second case it starts a TCP dial to c's address in the background
// (unless one runs, or that address failed within the last minute), so
// later streams can take TCP. TCP is tried only where QUIC already
// reached the peer and is authenticated the same way, so the worst a
// failed TCP dial costs is the dial.
func (n *Node) OpenBulkStream(ctx context.Context, c *Conn, tag byte) (Stream, error) {
	if n.tcp != nil {
		s, err := n.openTCPStream(ctx, c.id, tag)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, ErrNoTCP) {
			n.log.Debug("overlay TCP stream failed, using QUIC", "peer", c.id.Short(), "err", err)
		}
		n.tcp.dialBackground(n, c.id, c.remote)
	}
	return c.OpenStream(ctx, tag)
}

// openTCPStream opens a stream on the newest live session to peer.
func (n *Node) openTCPStream(ctx context.Context, peer identity.PeerID, tag byte) (Stream, error) {
	t := n.tcp
	t.mu.Lock()
	var ts *tcpSession
	for _, x := range t.sessions[peer] {
		if !x.s.IsClosed() {
			ts = x
		}
	}
	t.mu.Unlock()
	if ts == nil {
		return nil, ErrNoTCP
	}
	st, err := ts.s.OpenStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("overlay: opening TCP stream to %s: %w", peer.Short(), err)
	}
	return &tcpStream{Stream: st, tag: []byte{tag}}, nil
}

// DialTCP dials peer's TCP listener at addr and registers the session,
// returning when it is up. Callers normally let OpenBulkStream do this in
// the background.
func (n *Node) DialTCP(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) error {
	if n.tcp == nil {
		return ErrNoTCP
	}
	return n.tcp.dial(ctx, n, peer, addr)
}

// dialBackground starts one dial to peer at addr unless one runs or addr
// failed lately.
func (t *tcpTransport) dialBackground(n *Node, peer identity.PeerID, addr netip.AddrPort) {
	if peer.IsZero() || !addr.IsValid() {
		return
	}
	t.mu.Lock()
	if t.dialing[peer] || time.Now().Before(t.failed[addr]) || len(t.sessions[peer]) > 0 {
		t.mu.Unlock()
		return
	}
	t.dialing[peer] = true
	t.mu.Unlock()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		t.mu.Lock()
		delete(t.dialing, peer)
		t.mu.Unlock()
		return
	}
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.DialTimeout)
		err := t.dial(ctx, n, peer, addr)
		cancel()
		t.mu.Lock()
		delete(t.dialing, peer)
		if err != nil {
			t.failed[addr] = time.Now().Add(tcpRetry)
			for a, until := range t.failed { // keep the map small
				if time.Now().After(until) {
					delete(t.failed, a)
				}
			}
		}
		t.mu.Unlock()
		if err != nil {
			n.log.Debug("overlay TCP dial failed; bulk streams stay on QUIC", "peer", peer.Short(), "addr", addr.String(), "err", err)
		}
	}()
}

func (t *tcpTransport) dial(ctx context.Context, n *Node, peer identity.PeerID, addr netip.AddrPort) error {
	t.mu.Lock()
	full := t.nsess >= n.cfg.MaxConns
	t.mu.Unlock()
	if full {
		return fmt.Errorf("%w: %d TCP sessions", ErrConnLimit, n.cfg.MaxConns)
	}
	t.dials.Add(1)
	var d net.Dialer
	if ip := n.local.Addr(); !ip.IsUnspecified() {
		// From the node's own address, so per-address caps and NATs
		// see the TCP dial where they see its QUIC packets.
		d.LocalAddr = &net.TCPAddr{IP: ip.AsSlice()}
	}
	raw, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		t.dialFails.Add(1)
		return fmt.Errorf("overlay: TCP dial %s: %w", addr, err)
	}
	conf := n.clientTLS.Clone()
	conf.NextProtos = []string{ALPNTCP}
	conf.VerifyPeerCertificate = expectPeer(peer)
	rb := &recordBatcher{Conn: raw}
	tc := tls.Client(rb, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		t.dialFails.Add(1)
		return fmt.Errorf("overlay: TCP handshake with %s: %w", addr, err)
	}
	if tc.ConnectionState().NegotiatedProtocol != ALPNTCP {
		raw.Close()
		t.dialFails.Add(1)
		return fmt.Errorf("overlay: TCP handshake with %s: no %s", addr, ALPNTCP)
	}
	ys, err := yamux.Client(batchedTLS{tc, rb}, t.yamuxConfig(n), t.newSessionMemory(n))
	if err != nil {
		tc.Close()
		return err
	}
	return t.register(n, &tcpSession{s: ys, peer: peer, remote: addr, outbound: true})
}

// yamuxConfig is the session configuration, derived from the node's QUIC
// limits so both transports give a peer the same budgets.
func (t *tcpTransport) yamuxConfig(n *Node) *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = io.Discard
	c.MaxIncomingStreams = uint32(min(n.cfg.MaxIncomingStreams, tcpMaxStreams))
	c.AcceptBacklog = int(c.MaxIncomingStreams)
	// A 256 KiB chunk and its 5-byte answer header fit the first window.
	c.InitialStreamWindowSize = 512 << 10
	c.MaxStreamWindowSize = uint32(max(n.cfg.MaxStreamWindow, 512<<10))
	c.KeepAliveInterval = max(n.cfg.IdleTimeout/2, time.Second)
	// No bufio reader between yamux and TLS: crypto/tls already holds a
	// whole decrypted record, and a second buffer copied every byte of
	// a frame's tail twice (perf: about 1 % of a leecher's CPU in (1,8)).
	c.ReadBufSize = 0
	// A frame and its 12-byte header fit one 256 KiB buffer of yamux's
	// pool, so a 256 KiB chunk leaves as 262,132 bytes and then 12. Making
	// room for the whole chunk in one frame (MaxMessageSize tcpFrame+12)
	// took each frame's buffer to the pool's next size, 512 KiB: peak
	// leecher RSS in (1,8) rose to 128-154 MiB, with no CPU gain seen.
	c.MaxMessageSize = tcpFrame
	return c
}

// tcpMaxStreams caps a TCP session's incoming streams (below
// Config.MaxIncomingStreams when that is larger): each holds a 256 KiB
// window from the start, so this bounds what a peer can make us buffer.
// A downloading peer keeps at most 64 requests at one peer (the
// scheduler's MaxQueue) plus its session stream.
const tcpMaxStreams = 128

// tcpFrame is the largest yamux data frame: one TLS write of up to 16
// records, sent with one system call (recordBatcher).
const tcpFrame = 256 << 10

// recordBatcher sits between crypto/tls and the TCP socket. While a batch
// is open it collects the records that one tls.Conn.Write produces, so a
// yamux frame leaves in one write system call instead of one per 16 KiB
// record. Outside a batch (the handshake, alerts) it writes through.
type recordBatcher struct {
	net.Conn
	mu  sync.Mutex
	on  bool
	buf []byte
}

func (b *recordBatcher) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.on && len(b.buf)+len(p) <= cap(b.buf) {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	if err := b.flushLocked(); err != nil {
		return 0, err
	}
	return b.Conn.Write(p)
}

func (b *recordBatcher) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

func (b *recordBatcher) begin() {
	b.mu.Lock()
	if b.buf == nil {
		b.buf = make([]byte, 0, tcpFrame+64<<10) // a frame, its header and its record overhead
	}
	b.on = true
	b.mu.Unlock()
}

func (b *recordBatcher) end() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.on = false
	return b.flushLocked()
}

// batchedTLS is the TLS connection yamux writes to: each Write is one
// batch.
type batchedTLS struct {
	*tls.Conn
	b *recordBatcher
}

func (c batchedTLS) Write(p []byte) (int, error) {
	c.b.begin()
	n, err := c.Conn.Write(p)
	if ferr := c.b.end(); err == nil && ferr != nil {
		err = ferr
	}
	return n, err
}

// register adds an established session and starts serving its streams.
func (t *tcpTransport) register(n *Node, ts *tcpSession) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		ts.s.Close()
		return ErrClosed
	}
	n.wg.Add(1) // the session's server goroutine
	n.mu.Unlock()
	t.mu.Lock()
	if len(t.sessions[ts.peer]) >= n.cfg.MaxConnsPerPeer {
		t.mu.Unlock()
		n.wg.Done()
		if !ts.outbound {
			t.refused[refusedPeerConns].Add(1)
		}
		t.release(ts)
		ts.s.Close()
		return ErrConnLimit
	}
	ts.ctx, ts.cancel = context.WithCancel(n.ctx)
	t.sessions[ts.peer] = append(t.sessions[ts.peer], ts)
	t.nsess++
	t.mu.Unlock()
	t.sessionsUp.Add(1)
	n.log.Debug("overlay TCP session up", "peer", ts.peer.Short(), "addr", ts.remote.String(), "outbound", ts.outbound)
	go t.serve(n, ts)
	return nil
}

// serve accepts ts's streams until the session closes, closes an idle
// session after Config.IdleTimeout, and unregisters it.
func (t *tcpTransport) serve(n *Node, ts *tcpSession) {
	defer n.wg.Done()
	stop := context.AfterFunc(ts.ctx, func() { ts.s.Close() })
	defer stop()
	idle := make(chan struct{})
	go func() { // idle watch; ends with the session
		defer close(idle)
		tick := time.NewTicker(n.cfg.IdleTimeout)
		defer tick.Stop()
		quiet := false
		for {
			select {
			case <-ts.s.CloseChan():
				return
			case <-tick.C:
				if ts.s.NumStreams() > 0 {
					quiet = false
					continue
				}
				if quiet {
					ts.s.Close()
					return
				}
				quiet = true
			}
		}
	}()
	var wg sync.WaitGroup
	for {
		st, err := ts.s.AcceptStream()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.serveStream(n, ts, st)
		}()
	}
	ts.cancel()
	ts.s.Close()
	<-idle
	wg.Wait()
	t.mu.Lock()
	cs := t.sessions[ts.peer]
	for i, x := range cs {
		if x == ts {
			cs = append(cs[:i], cs[i+1:]...)
			t.nsess--
			break
		}
	}
	if len(cs) == 0 {
		delete(t.sessions, ts.peer)
	} else {
		t.sessions[ts.peer] = cs
	}
	t.mu.Unlock()
	t.release(ts)
	n.log.Debug("overlay TCP session down", "peer", ts.peer.Short(), "addr", ts.remote.String())
}

// release returns an incoming session's per-IP slot.
func (t *tcpTransport) release(ts *tcpSession) {
	if ts.outbound || !ts.ip.IsValid() {
		return
	}
	t.mu.Lock()
	t.adm.release(ts.ip)
	t.mu.Unlock()
}

func (t *tcpTransport) serveStream(n *Node, ts *tcpSession, ys *yamux.Stream) {
	s := &tcpStream{Stream: ys}
	defer func() {
		ys.CloseWrite()
		ys.CloseRead()
	}()
	var tag [1]byte
	ys.SetReadDeadline(time.Now().Add(n.cfg.TagTimeout))
	if _, err := io.ReadFull(ys, tag[:]); err != nil {
		n.stats.streamsBadTag.Add(1)
		s.CancelWrite(StreamCodeNoTag)
		return
	}
	ys.SetReadDeadline(time.Time{})
	t.mu.Lock()
	h := t.handlers[tag[0]]
	t.mu.Unlock()
	if h == nil {
		n.stats.streamsBadTag.Add(1)
		s.CancelWrite(StreamCodeUnknownTag)
		return
	}
	t.streams.Add(1)
	h(ts.ctx, ts.peer, s)
}

// acceptLoop takes incoming TCP connections until the listener closes.
// The caps are checked before the TLS handshake: MaxHandshakes and
// MaxHandshakesPerIP in progress, MaxConnsPerIP handshakes and sessions
// per address, and MaxConns-DialReserve sessions in all; beyond any, the
// connection is closed at once and counted.
func (t *tcpTransport) acceptLoop(n *Node) {
	defer n.wg.Done()
	for {
		raw, err := t.ln.Accept()
		if err != nil {
			if n.ctx.Err() == nil {
				n.log.Warn("overlay TCP accept loop stopped", "err", err)
			}
			return
		}
		ap, _ := netip.ParseAddrPort(raw.RemoteAddr().String())
		ip := hostOf(ap.Addr())
		t.mu.Lock()
		// Closing the socket fails the handshake that waits on it: that is
		// how an evicted handshake ends.
		h, why, ok := t.adm.admit(&n.cfg, ip, t.nsess+t.adm.handshakes, func() bool { raw.Close(); return true })
		t.mu.Unlock()
		if !ok {
			t.refused[why].Add(1)
			raw.Close()
			continue
		}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			raw.Close()
			t.settle(h, true)
			return
		}
		n.wg.Add(1)
		n.mu.Unlock()
		go func() {
			defer n.wg.Done()
			t.handshake(n, raw, netip.AddrPortFrom(ip, ap.Port()), h)
		}()
	}
}

// settle ends an incoming handshake's slot; failed also returns its
// per-IP session slot.
func (t *tcpTransport) settle(h *handshake, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.adm.settle(h)
	if failed {
		t.adm.release(h.ip)
	}
}

// handshake runs the server side of TLS within 2*HandshakeTimeout (as
// quic-go bounds its handshakes) and registers the session.
func (t *tcpTransport) handshake(n *Node, raw net.Conn, remote netip.AddrPort, h *handshake) {
	ip := remote.Addr()
	ctx, cancel := context.WithTimeout(n.ctx, 2*n.cfg.HandshakeTimeout)
	defer cancel()
	rb := &recordBatcher{Conn: raw}
	tc := tls.Server(rb, t.serverTLS)
	err := tc.HandshakeContext(ctx)
	var pk identity.PublicKey
	if err == nil {
		pk, err = stateKey(tc.ConnectionState())
	}
	if err == nil && pk.PeerID() == n.id {
		err = ErrSelf
	}
	if err != nil {
		t.handshakeFails.Add(1)
		raw.Close()
		t.settle(h, true)
		return
	}
	ys, err := yamux.Server(batchedTLS{tc, rb}, t.yamuxConfig(n), t.newSessionMemory(n))
	t.settle(h, err != nil)
	if err != nil {
		tc.Close()
		return
	}
	t.register(n, &tcpSession{s: ys, peer: pk.PeerID(), remote: remote, ip: ip})
}

// shutdown closes the listener and every session; the goroutines end on
// their own and Node.wg waits for them.
func (t *tcpTransport) shutdown() {
	t.ln.Close()
	t.mu.Lock()
	var all []*tcpSession
	for _, cs := range t.sessions {
		all = append(all, cs...)
	}
	t.mu.Unlock()
	for _, ts := range all {
		ts.s.Close()
	}
}

// memBudget counts receive-buffer memory that peers can make the node hold
// on TCP. yamux reserves each stream's window through a MemoryManager:
// 256 KiB when a stream opens, more as the window grows towards
// MaxStreamWindow while the reader keeps up. Opening is never refused here
// (a refused open would make yamux close the whole session, honest or
// not): it is bounded by the stream caps instead, tcpMaxStreams incoming
// per session. Growth is refused beyond MaxConnWindow per session and
// MaxTCPBuffer for the node; the window then stays as it is. One session
// can thus hold at most tcpMaxStreams x 256 KiB + MaxConnWindow.
type memBudget struct {
	mu    sync.Mutex
	used  int // all reservations, for Stats
	grown int // growth reservations, the part that is capped
	max   int // cap on grown
}

func (b *memBudget) reserve(size int, growth bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if growth {
		if b.grown+size > b.max {
			return false
		}
		b.grown += size
	}
	b.used += size
	return true
}

func (b *memBudget) release(size, grown int) {
	b.mu.Lock()
	b.used -= size
	b.grown -= grown
	b.mu.Unlock()
}

// newSessionMemory returns the MemoryManager factory of one session.
func (t *tcpTransport) newSessionMemory(n *Node) func() (yamux.MemoryManager, error) {
	sess := &memBudget{max: int(n.cfg.MaxConnWindow)}
	return func() (yamux.MemoryManager, error) {
		return &memSpan{t: t, sess: sess}, nil
	}
}

// errMemory refuses a reservation beyond a budget.
var errMemory = errors.New("overlay: TCP receive buffer budget exhausted")

// openPriority is the priority yamux gives a new stream's first window.
const openPriority = 255

// memSpan is one stream's reservations.
type memSpan struct {
	t     *tcpTransport
	sess  *memBudget
	mu    sync.Mutex
	used  int
	grown int
}

func (m *memSpan) ReserveMemory(size int, prio uint8) error {
	growth, grown := prio < openPriority, 0
	if growth {
		grown = size
	}
	if !m.sess.reserve(size, growth) {
		m.t.memRefused.Add(1)
		return errMemory
	}
	if !m.t.mem.reserve(size, growth) {
		m.sess.release(size, grown)
		m.t.memRefused.Add(1)
		return errMemory
	}
	m.mu.Lock()
	m.used += size
	m.grown += grown
	m.mu.Unlock()
	return nil
}

// ReleaseMemory returns size bytes, growth first.
func (m *memSpan) ReleaseMemory(size int) {
	m.mu.Lock()
	size = min(size, m.used)
	grown := min(size, m.grown)
	m.used -= size
	m.grown -= grown
	m.mu.Unlock()
	m.sess.release(size, grown)
	m.t.mem.release(size, grown)
}

func (m *memSpan) Done() {
	m.mu.Lock()
	size, grown := m.used, m.grown
	m.used, m.grown = 0, 0
	m.mu.Unlock()
	m.sess.release(size, grown)
	m.t.mem.release(size, grown)
}

// TCPStats counts the TCP transport's events.
type TCPStats struct {
	Sessions       int    // open sessions now
	SessionsUp     uint64 // sessions established, both directions
	Dials          uint64 // TCP dials started
	DialFails      uint64 // of those, failed (no listener, wrong peer, timeout)
	HandshakeFails uint64 // incoming TLS handshakes that failed
	Streams        uint64 // incoming streams given to a handler
	// Incoming connections refused before the handshake, by reason, and
	// sessions closed beyond MaxConnsPerPeer (RefusedPeerConns).
	RefusedConns, RefusedHandshakes, RefusedIPHandshakes, RefusedIPConns, RefusedPeerConns uint64
	BufferRefused                                                                          uint64 // stream windows refused by the receive buffer budgets
	Evicted                                                                                uint64 // handshakes ended so that another address's could start
	BufferBytes                                                                            int    // receive buffer reserved now
}

func (t *tcpTransport) stats() TCPStats {
	t.mu.Lock()
	nsess, evicted := t.nsess, t.adm.evicted
	t.mu.Unlock()
	t.mem.mu.Lock()
	used := t.mem.used
	t.mem.mu.Unlock()
	return TCPStats{
		Sessions:            nsess,
		SessionsUp:          t.sessionsUp.Load(),
		Dials:               t.dials.Load(),
		DialFails:           t.dialFails.Load(),
		HandshakeFails:      t.handshakeFails.Load(),
		Streams:             t.streams.Load(),
		RefusedConns:        t.refused[refusedConns].Load(),
		RefusedHandshakes:   t.refused[refusedHandshakes].Load(),
		RefusedIPHandshakes: t.refused[refusedIPHandshakes].Load(),
		RefusedIPConns:      t.refused[refusedIPConns].Load(),
		RefusedPeerConns:    t.refused[refusedPeerConns].Load(),
		BufferRefused:       t.memRefused.Load(),
		Evicted:             evicted,
		BufferBytes:         used,
	}
}
