package chunker

import "errors"

// Sentinel errors. Every error returned by this package that falls into one of
// these classes wraps the sentinel, so callers test with errors.Is.
var (
	// ErrChunkMismatch: chunk bytes do not hash to the leaf for their index.
	// From Download.WriteChunk it means the peer that sent them sent bad data.
	ErrChunkMismatch = errors.New("chunker: chunk does not match its leaf")
	// ErrModified: a published file (or a stored parity chunk) no longer
	// matches what was published; the chunk must not be served.
	ErrModified = errors.New("chunker: content modified since publish")
	// ErrRootMismatch: a leaf layer or proof does not lead to the Merkle root.
	ErrRootMismatch = errors.New("chunker: merkle root mismatch")
	// ErrBadManifest: manifest bytes or fields are malformed.
	ErrBadManifest = errors.New("chunker: bad manifest")
	// ErrBadID: a content ID text does not parse.
	ErrBadID = errors.New("chunker: bad content id")
	// ErrBadLink: a link does not parse.
	ErrBadLink = errors.New("chunker: bad link")
	// ErrBadProof: an inclusion proof is malformed or does not verify.
	ErrBadProof = errors.New("chunker: bad proof")
	// ErrBadIndex: a chunk or stripe index is out of range.
	ErrBadIndex = errors.New("chunker: index out of range")
	// ErrNotHave: the chunk is not (yet) held, so it cannot be served.
	ErrNotHave = errors.New("chunker: chunk not held")
	// ErrNotDecodable: a stripe has fewer verified chunks than it needs.
	ErrNotDecodable = errors.New("chunker: stripe not decodable")
	// ErrNotFound: the store holds no item with that content ID.
	ErrNotFound = errors.New("chunker: item not found")
	// ErrBadState: an on-disk state file (bitmap, item metadata) is corrupt.
	ErrBadState = errors.New("chunker: bad state file")
	// ErrClosed: the object was closed.
	ErrClosed = errors.New("chunker: closed")
)
