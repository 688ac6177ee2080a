package sched

import (
	"encoding/hex"
	"fmt"
)

// PeerID names a peer. It has the shape of overlay/identity's PeerID (the
// BLAKE3-256 hash of the peer's public key), which converts to it directly;
// the scheduler only compares and hashes it.
type PeerID [32]byte

// String returns the first 8 hex digits, for logs and test failures.
func (p PeerID) String() string { return hex.EncodeToString(p[:4]) }

// Kind says what an Action asks the driver to do.
type Kind uint8

// Action kinds.
const (
	// Request: ask Peer for Chunk. The driver reports the outcome with
	// ChunkOK, ChunkBad or RequestFailed.
	Request Kind = iota + 1
	// Cancel: abandon the outstanding request for Chunk at Peer (reset the
	// stream). The scheduler already forgot it; a late answer is harmless.
	Cancel
	// Penalise: Peer sent a chunk that failed verification; it lost trust
	// but is not banned yet. Informational.
	Penalise
	// Ban: Peer is banned for this download; drop its session. Its requests
	// were cancelled by Cancel actions just before this one.
	Ban
	// DecodeStripe: Stripe has enough verified chunks but misses data
	// chunks; rebuild them from the verified ones.
	DecodeStripe
	// Done: every stripe is complete. Emitted once, after the last
	// DecodeStripe; the download is finished once those decodes are.
	Done
)

var kindNames = [...]string{"?", "request", "cancel", "penalise", "ban", "decode", "done"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Action is one instruction for the driver. Fields that do not apply to the
// Kind are zero (Chunk and Stripe are -1 when not used).
type Action struct {
	Kind   Kind
	Peer   PeerID // Request, Cancel, Penalise, Ban
	Chunk  int    // Request, Cancel
	Stripe int    // DecodeStripe
}

func (a Action) String() string {
	switch a.Kind {
	case Request, Cancel:
		return fmt.Sprintf("%v(%v, %d)", a.Kind, a.Peer, a.Chunk)
	case Penalise, Ban:
		return fmt.Sprintf("%v(%v)", a.Kind, a.Peer)
	case DecodeStripe:
		return fmt.Sprintf("%v(%d)", a.Kind, a.Stripe)
	}
	return a.Kind.String()
}

// Reason says why a request failed without delivering a chunk.
type Reason uint8

// Failure reasons for RequestFailed.
const (
	// Timeout: the driver gave up on the request (its own deadline). The
	// scheduler also times requests out itself on Tick.
	Timeout Reason = iota + 1
	// Busy: the peer refused, out of upload slots. It is left alone for a
	// while and its queue shrinks.
	Busy
	// NotFound: the peer does not have the chunk after all. The scheduler
	// forgets that the peer has it.
	NotFound
	// PeerGone: the connection broke. No more requests go to the peer until
	// it joins again; the driver must also report PeerLeft.
	PeerGone
	// Elsewhere: the peer holds the chunk but asks us to fetch it from
	// other peers first (a super-seeding seeder). It is asked again if no
	// other peer turns out to serve it (see elsewhere.go).
	Elsewhere
)

var reasonNames = [...]string{"?", "timeout", "busy", "not-found", "peer-gone", "elsewhere"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}
