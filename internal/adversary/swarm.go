package adversary

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/swarm"
)

// SwarmMode says how a SwarmPeer answers the swarm streams others open to
// it.
type SwarmMode int

// Serving modes.
const (
	// NotFound answers every request "not found" (a peer named by a link
	// that does not hold the content).
	NotFound SwarmMode = iota + 1
	// StallMeta answers a manifest request "ok, N bytes" and then sends
	// nothing until the requester gives up.
	StallMeta
	// BadManifest answers a manifest request with bytes that do not hash
	// to the content ID.
	BadManifest
	// BadLeaves serves the real manifest (SwarmPeer.Manifest) but a leaf
	// layer that does not match its Merkle root.
	BadLeaves
	// SilentMeta takes a manifest request and answers nothing at all (not
	// even a header) until the requester gives up.
	SilentMeta
	// IdleSession accepts a session, answers the requester's hello with
	// one announcing no chunk, and then sends nothing until the requester
	// closes the session (a Sybil that holds a download's session slot and
	// never serves); every other request is answered "not found".
	IdleSession
)

// SwarmPeer is a malicious swarm peer: a real overlay node whose swarm
// handler follows Mode, and whose methods attack other nodes' servers.
type SwarmPeer struct {
	Node     *overlay.Node
	Mode     SwarmMode
	Manifest []byte // BadLeaves: the real manifest to serve

	requests [5]atomic.Int64 // incoming requests by swarm.Kind
	idle     atomic.Int64    // IdleSession: sessions held open now
}

// NewSwarmPeer starts a malicious peer on 127.0.0.1 answering in mode; it
// is closed when the test ends.
func NewSwarmPeer(tb testing.TB, mode SwarmMode) *SwarmPeer {
	tb.Helper()
	return NewSwarmPeerWith(tb, overlay.Config{}, mode)
}

// NewSwarmPeerWith is NewSwarmPeer on an overlay node made from cfg (an
// address of its own, a given identity).
func NewSwarmPeerWith(tb testing.TB, cfg overlay.Config, mode SwarmMode) *SwarmPeer {
	tb.Helper()
	n, err := overlay.New(cfg)
	if err != nil {
		tb.Fatalf("adversary: overlay.New: %v", err)
	}
	p := &SwarmPeer{Node: n, Mode: mode}
	n.Handle(swarm.Tag, p.serve)
	ran := make(chan struct{})
	go func() { defer close(ran); n.Run(context.Background()) }() // until Close
	tb.Cleanup(func() {
		n.Close()
		<-ran
	})
	return p
}

// ID returns the peer's identity.
func (p *SwarmPeer) ID() identity.PeerID { return p.Node.PeerID() }

// Addr returns the peer's address.
func (p *SwarmPeer) Addr() netip.AddrPort { return p.Node.LocalAddr() }

// Requests returns how many requests of kind k the peer received.
func (p *SwarmPeer) Requests(k swarm.Kind) int64 {
	if int(k) >= len(p.requests) {
		return 0
	}
	return p.requests[k].Load()
}

func (p *SwarmPeer) serve(ctx context.Context, _ *overlay.Conn, st *quic.Stream) {
	defer st.CancelRead(swarm.CodeCancelled)
	req, err := swarm.ReadRequest(st)
	if err != nil {
		st.CancelWrite(swarm.CodeProtocol)
		return
	}
	if int(req.Kind) < len(p.requests) {
		p.requests[req.Kind].Add(1)
	}
	switch {
	case p.Mode == StallMeta && req.Kind == swarm.KindManifest:
		st.Write(swarm.AppendResponseHeader(nil, swarm.StatusOK, 4096))
		<-ctx.Done() // silent until the connection ends
		st.CancelWrite(swarm.CodeClosing)
	case p.Mode == SilentMeta && req.Kind == swarm.KindManifest:
		<-ctx.Done()
		st.CancelWrite(swarm.CodeClosing)
	case p.Mode == BadManifest && req.Kind == swarm.KindManifest:
		junk := make([]byte, 300)
		for i := range junk {
			junk[i] = byte(i * 7)
		}
		st.Write(append(swarm.AppendResponseHeader(nil, swarm.StatusOK, uint32(len(junk))), junk...))
		st.Close()
	case p.Mode == BadLeaves && req.Kind == swarm.KindManifest:
		st.Write(append(swarm.AppendResponseHeader(nil, swarm.StatusOK, uint32(len(p.Manifest))), p.Manifest...))
		st.Close()
	case p.Mode == IdleSession && req.Kind == swarm.KindSession:
		p.idleSession(st)
	case p.Mode == BadLeaves && req.Kind == swarm.KindLeaves:
		m, err := chunker.DecodeManifest(p.Manifest)
		if err != nil {
			st.CancelWrite(swarm.CodeClosing)
			return
		}
		leaves := make([]byte, 32*m.NumChunks()) // all zero: not the root
		st.Write(append(swarm.AppendResponseHeader(nil, swarm.StatusOK, uint32(len(leaves))), leaves...))
		st.Close()
	default:
		st.Write(swarm.AppendError(nil, swarm.StatusNotFound, "not here"))
		st.Close()
	}
}

// idleSession reads the requester's hello, answers with a hello that
// announces nothing, and holds the stream until the requester ends it.
func (p *SwarmPeer) idleSession(st *quic.Stream) {
	var hdr [5]byte
	if _, err := io.ReadFull(st, hdr[:]); err != nil {
		st.CancelWrite(swarm.CodeCancelled)
		return
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if swarm.MsgType(hdr[0]) != swarm.MsgHello || n > MaxHelloBody {
		st.CancelWrite(swarm.CodeProtocol)
		return
	}
	msg := make([]byte, 5+n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(st, msg[5:]); err != nil {
		st.CancelWrite(swarm.CodeCancelled)
		return
	}
	hello, err := swarm.DecodeMessage(msg)
	if err != nil {
		st.CancelWrite(swarm.CodeProtocol)
		return
	}
	none := make([]byte, (hello.N+7)/8)
	out := swarm.AppendResponseHeader(nil, swarm.StatusOK, 0)
	out = swarm.AppendMessage(out, swarm.Message{Type: swarm.MsgHello, N: hello.N, Bitmap: none})
	if _, err := st.Write(out); err != nil {
		st.CancelWrite(swarm.CodeCancelled)
		return
	}
	p.idle.Add(1)
	io.Copy(io.Discard, st) // until the requester closes or resets the session
	p.idle.Add(-1)
	st.CancelWrite(swarm.CodeClosing)
}

// IdleSessions returns how many sessions an IdleSession peer holds open
// now.
func (p *SwarmPeer) IdleSessions() int64 { return p.idle.Load() }

// openSwarm opens a swarm stream to peer and sends req (closing the send
// side unless keepOpen).
func (p *SwarmPeer) openSwarm(ctx context.Context, peer identity.PeerID, addr netip.AddrPort, req swarm.Request, keepOpen bool) (*quic.Stream, error) {
	st, err := p.Node.OpenStream(ctx, peer, addr, swarm.Tag)
	if err != nil {
		return nil, err
	}
	if _, err := st.Write(swarm.AppendRequest(nil, req)); err != nil {
		st.CancelRead(swarm.CodeCancelled)
		st.CancelWrite(swarm.CodeCancelled)
		return nil, err
	}
	if !keepOpen {
		st.Close()
	}
	return st, nil
}

// MaxHelloBody is the largest hello body the wire format admits: flags,
// count and a bitmap of 2^22 chunks.
const MaxHelloBody = 1 + 4 + swarm.MaxChunks/8

// holdUntil resets streams when ctx ends.
func holdUntil(ctx context.Context, streams []*quic.Stream) {
	context.AfterFunc(ctx, func() {
		for _, st := range streams {
			st.CancelRead(swarm.CodeCancelled)
			st.CancelWrite(swarm.CodeCancelled)
		}
	})
}

// HoldHellos opens n session streams to the server at peer for content id,
// each announcing a hello body of bodyLen bytes (at most the wire format's
// limit) and sending none of it. The streams stay open until ctx ends. It
// returns how many streams it opened and does not block.
func (p *SwarmPeer) HoldHellos(ctx context.Context, peer identity.PeerID, addr netip.AddrPort, id chunker.ContentID, n int, bodyLen uint32) (int, error) {
	var hdr [5]byte
	hdr[0] = byte(swarm.MsgHello)
	binary.BigEndian.PutUint32(hdr[1:], min(bodyLen, MaxHelloBody))
	var open []*quic.Stream
	defer func() { holdUntil(ctx, open) }()
	for range n {
		st, err := p.openSwarm(ctx, peer, addr, swarm.Request{Kind: swarm.KindSession, ID: id}, true)
		if err != nil {
			return len(open), fmt.Errorf("adversary: session stream %d: %w", len(open), err)
		}
		open = append(open, st)
		if _, err := st.Write(hdr[:]); err != nil {
			return len(open), fmt.Errorf("adversary: hello header %d: %w", len(open), err)
		}
	}
	return len(open), nil
}

// HoardUploads asks the server at peer for the given chunks of id, each on
// its own stream, and never reads an answer: the chunks fill QUIC's
// flow-control windows and the server's writes block. The streams stay open
// until ctx ends. It returns how many it opened and does not block.
func (p *SwarmPeer) HoardUploads(ctx context.Context, peer identity.PeerID, addr netip.AddrPort, id chunker.ContentID, chunks []int) (int, error) {
	var open []*quic.Stream
	defer func() { holdUntil(ctx, open) }()
	for _, i := range chunks {
		st, err := p.openSwarm(ctx, peer, addr, swarm.Request{Kind: swarm.KindChunk, ID: id, Index: uint32(i)}, false)
		if err != nil {
			return len(open), err
		}
		open = append(open, st)
	}
	return len(open), nil
}
