package overlay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// Config configures a Node. The zero value is a working configuration with
// a fresh ephemeral key on a random loopback port.
type Config struct {
	// ListenAddr is the UDP address to bind, "host:port". Default
	// "127.0.0.1:0" (loopback, random port); use ":port" or
	// "0.0.0.0:port" to be reachable from other hosts. Ignored when
	// PacketConn is set.
	ListenAddr string
	// PacketConn, when set, is used instead of binding ListenAddr, for
	// example a netem-wrapped socket in tests. The Node owns it and closes
	// it on Close (or when New fails). Only a *net.UDPConn gets batched
	// I/O (see NoBatching).
	PacketConn net.PacketConn
	// NoBatching turns off shoal's batched UDP I/O (overlay/internal/udpbatch:
	// segmentation offload on send, receive offload on read): quic-go then
	// reads and writes one packet per system call, without offloads (the
	// node reads through a wrapper that takes non-QUIC packets out, so
	// quic-go's own offloading socket path is not used either). For
	// comparisons, and for kernels that misbehave with the offloads.
	NoBatching bool
	// TCP adds the TCP transport: a TCP listener on the UDP socket's IP
	// and port, TLS 1.3 with the same certificates, yamux streams. Bulk
	// streams (OpenBulkStream) move to it once a session to the peer is
	// up; everything else stays on QUIC. A busy TCP port leaves the node
	// on QUIC alone (logged). Default off.
	TCP bool
	// MaxTCPBuffer caps the receive buffers all TCP sessions together may
	// hold, in bytes (each session is also capped at MaxConnWindow).
	// Default 256 MiB.
	MaxTCPBuffer int
	// KeyPair is the node's identity. Default: a fresh ephemeral key.
	KeyPair *identity.KeyPair
	// Logger receives the node's logs. Default: discard.
	Logger *slog.Logger

	// MaxConns caps open QUIC connections (inbound and outbound, including
	// dials and handshakes in progress). Beyond it, dials fail with
	// ErrConnLimit and incoming handshakes are refused (the peer sees
	// ErrRefused). Default 256.
	MaxConns int
	// DialReserve is the part of MaxConns only this node's own dials may
	// use: incoming connections are refused once MaxConns-DialReserve slots
	// are taken, so peers filling the node cannot stop it dialling out.
	// Default MaxConns/8 (32); -1 means none.
	DialReserve int
	// MaxConnsPerIP caps incoming connections and handshakes from one IP
	// address (for IPv6, one /64). Default 32; -1 means no cap.
	MaxConnsPerIP int
	// MaxConnsPerPeer caps connections to one peer identity (a second one
	// appears when both sides dial at once or a peer restarts). Default 4.
	MaxConnsPerPeer int
	// MaxHandshakes caps incoming handshakes in progress (half-open
	// connections); each is dropped by quic-go after at most
	// 2*HandshakeTimeout. Default 64.
	MaxHandshakes int
	// MaxHandshakesPerIP caps incoming handshakes in progress from one IP
	// address (for IPv6, one /64). Default 8.
	MaxHandshakesPerIP int
	// RetryAbove is the number of handshakes in progress above which a new
	// one must first prove its source address with a QUIC Retry (one more
	// round trip; spoofed sources never answer it). Default
	// MaxHandshakes/4 (16); -1 means always, 0 means default.
	RetryAbove int
	// IdleTimeout closes a connection that has seen no packet for this
	// long. Default 30s.
	IdleTimeout time.Duration
	// KeepAlive, when positive, sends keep-alive packets on this period so
	// that idle connections stay open (and NAT bindings stay warm). Default
	// 0: idle connections close after IdleTimeout.
	KeepAlive time.Duration
	// DuplicateGrace is how long a second connection to the same peer
	// (both sides dialled at once, or the peer restarted) keeps carrying
	// the streams already on it before it is closed. New streams always
	// go to the preferred connection. Default 10s.
	DuplicateGrace time.Duration
	// HandshakeTimeout is quic-go's handshake idle timeout: a handshake is
	// dropped after HandshakeTimeout without progress or 2*HandshakeTimeout
	// in all. Default 5s.
	HandshakeTimeout time.Duration
	// DialTimeout bounds a whole dial, shared by all callers waiting on it.
	// Default 10s.
	DialTimeout time.Duration
	// TagTimeout bounds the wait for an incoming stream's tag byte.
	// Default 10s.
	TagTimeout time.Duration
	// MaxIncomingStreams caps concurrent streams a peer may open on one
	// connection (each runs one handler goroutine). Default 256.
	MaxIncomingStreams int64

	// Flow-control windows in bytes (quic-go auto-tunes each from its
	// initial to its max value). Defaults: stream 2 MiB to 16 MiB,
	// connection 4 MiB to 32 MiB.
	InitialStreamWindow, MaxStreamWindow uint64
	InitialConnWindow, MaxConnWindow     uint64
	// SocketBuffer is the UDP receive and send buffer size asked of the
	// OS, in bytes. Default 7 MiB (what quic-go wants).
	SocketBuffer int

	// IPv8 configures the node's IPv8 Endpoint (Node.Endpoint). Its Key
	// defaults to KeyPair and its Logger to Logger.
	IPv8 ipv8.Config
	// OnDatagram receives every non-QUIC packet (first byte 0x00) from one
	// goroutine, in arrival order. It may keep b (each packet is a copy)
	// and should not block: while it runs, further datagrams wait in a
	// queue of 1,024 and then drop (counted). Default: the IPv8
	// Endpoint's HandlePacket. SetDatagramHandler replaces it at run time.
	OnDatagram func(from netip.AddrPort, b []byte)
	// OnPeer receives PeerConnected and PeerDisconnected events, in order,
	// without any Node lock held. It may call Node methods but must not
	// block for long. Default: none.
	OnPeer func(PeerEvent)
}

// Default flow-control windows and limits.
const (
	defaultListenAddr      = "127.0.0.1:0"
	defaultMaxConns        = 256
	defaultMaxConnsPerIP   = 32
	defaultMaxConnsPerPeer = 4
	defaultMaxHandshakes   = 64
	// defaultMaxHandshakesPerIP is the per-IP half-open cap.
	defaultMaxHandshakesPerIP = 8
	defaultIdleTimeout        = 30 * time.Second
	defaultHandshake          = 5 * time.Second
	defaultDuplicateGrace     = 10 * time.Second
	defaultDialTimeout        = 10 * time.Second
	defaultTagTimeout         = 10 * time.Second
	defaultMaxStreams         = 256
	defaultInitStreamWin      = 2 << 20
	defaultMaxStreamWin       = 16 << 20
	defaultInitConnWin        = 4 << 20
	defaultMaxConnWin         = 32 << 20
	defaultSocketBuffer       = 7 << 20
	defaultMaxTCPBuffer       = 256 << 20
	maxIncomingStreamLimit    = 1 << 20
)

// ErrBadConfig reports an invalid Config field.
var ErrBadConfig = errors.New("overlay: bad config")

// withDefaults fills defaults and validates; the one place that does.
func (c Config) withDefaults() (Config, error) {
	if c.ListenAddr == "" {
		c.ListenAddr = defaultListenAddr
	}
	if c.KeyPair == nil {
		kp, err := identity.Generate(nil)
		if err != nil {
			return c, err
		}
		c.KeyPair = kp
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.IPv8.Key == nil {
		c.IPv8.Key = c.KeyPair
	}
	if c.IPv8.Logger == nil {
		c.IPv8.Logger = c.Logger
	}
	setDefault(&c.MaxConns, defaultMaxConns)
	setDefault(&c.DialReserve, c.MaxConns/8)
	setDefault(&c.MaxConnsPerIP, defaultMaxConnsPerIP)
	setDefault(&c.MaxConnsPerPeer, defaultMaxConnsPerPeer)
	setDefault(&c.MaxHandshakes, defaultMaxHandshakes)
	setDefault(&c.MaxHandshakesPerIP, defaultMaxHandshakesPerIP)
	setDefault(&c.RetryAbove, c.MaxHandshakes/4)
	if c.DialReserve < 0 {
		c.DialReserve = 0
	}
	if c.MaxConnsPerIP < 0 {
		c.MaxConnsPerIP = c.MaxConns
	}
	if c.RetryAbove < 0 {
		c.RetryAbove = 0
	}
	setDefault(&c.IdleTimeout, defaultIdleTimeout)
	setDefault(&c.HandshakeTimeout, defaultHandshake)
	setDefault(&c.DuplicateGrace, defaultDuplicateGrace)
	setDefault(&c.DialTimeout, defaultDialTimeout)
	setDefault(&c.TagTimeout, defaultTagTimeout)
	setDefault(&c.MaxIncomingStreams, defaultMaxStreams)
	setDefault(&c.InitialStreamWindow, defaultInitStreamWin)
	setDefault(&c.MaxStreamWindow, defaultMaxStreamWin)
	setDefault(&c.InitialConnWindow, defaultInitConnWin)
	setDefault(&c.MaxConnWindow, defaultMaxConnWin)
	setDefault(&c.SocketBuffer, defaultSocketBuffer)
	setDefault(&c.MaxTCPBuffer, defaultMaxTCPBuffer)

	switch {
	case c.MaxConns < 0:
		return c, fmt.Errorf("%w: MaxConns %d is negative", ErrBadConfig, c.MaxConns)
	case c.DialReserve >= c.MaxConns:
		return c, fmt.Errorf("%w: DialReserve %d leaves no room under MaxConns %d", ErrBadConfig, c.DialReserve, c.MaxConns)
	case c.MaxConnsPerPeer < 1 || c.MaxHandshakes < 1 || c.MaxHandshakesPerIP < 1:
		return c, fmt.Errorf("%w: negative connection or handshake cap", ErrBadConfig)
	case c.IdleTimeout < 0 || c.KeepAlive < 0 || c.DuplicateGrace < 0 || c.HandshakeTimeout < 0 || c.DialTimeout < 0 || c.TagTimeout < 0:
		return c, fmt.Errorf("%w: negative duration", ErrBadConfig)
	case c.MaxIncomingStreams < 0 || c.MaxIncomingStreams > maxIncomingStreamLimit:
		return c, fmt.Errorf("%w: MaxIncomingStreams %d out of range", ErrBadConfig, c.MaxIncomingStreams)
	case c.InitialStreamWindow > c.MaxStreamWindow:
		return c, fmt.Errorf("%w: initial stream window %d above max %d", ErrBadConfig, c.InitialStreamWindow, c.MaxStreamWindow)
	case c.InitialConnWindow > c.MaxConnWindow:
		return c, fmt.Errorf("%w: initial connection window %d above max %d", ErrBadConfig, c.InitialConnWindow, c.MaxConnWindow)
	case c.SocketBuffer < 0:
		return c, fmt.Errorf("%w: SocketBuffer %d is negative", ErrBadConfig, c.SocketBuffer)
	}
	return c, nil
}

// quicConfig is the quic-go configuration derived from c.
func (c Config) quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           c.HandshakeTimeout,
		MaxIdleTimeout:                 c.IdleTimeout,
		KeepAlivePeriod:                c.KeepAlive,
		InitialStreamReceiveWindow:     c.InitialStreamWindow,
		MaxStreamReceiveWindow:         c.MaxStreamWindow,
		InitialConnectionReceiveWindow: c.InitialConnWindow,
		MaxConnectionReceiveWindow:     c.MaxConnWindow,
		MaxIncomingStreams:             c.MaxIncomingStreams,
		MaxIncomingUniStreams:          -1, // shoal uses bidirectional streams only
	}
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
