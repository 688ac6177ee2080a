package registry

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
)

// Tag is the overlay stream tag of the mapping protocol.
const Tag byte = 'r'

const (
	wireVersion = 1
	opLookup    = 1
	algSHA256   = 1

	requestLen = 3 + 32
	maxWireLen = 64
)

// Status of a mapping answer.
const (
	statusReady   = 0
	statusPending = 1
	statusUnknown = 2
)

// ErrBadMessage is a mapping message that does not decode.
var ErrBadMessage = errors.New("registry: bad mapping message")

// Digest is the SHA-256 of a blob.
type Digest [32]byte

// BlobKey is the DHT key under which nodes holding a blob announce it.
func BlobKey(d Digest) [32]byte {
	h := sha256.New()
	h.Write([]byte("shoal/oci-blob/v1"))
	h.Write(d[:])
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// answer is one mapping answer.
type answer struct {
	status  byte
	size    int64    // ready, pending
	content [32]byte // ready
	have    int64    // pending
}

func appendRequest(b []byte, d Digest) []byte {
	b = append(b, wireVersion, opLookup, algSHA256)
	return append(b, d[:]...)
}

func decodeRequest(b []byte) (Digest, error) {
	var d Digest
	if len(b) != requestLen || b[0] != wireVersion || b[1] != opLookup || b[2] != algSHA256 {
		return d, ErrBadMessage
	}
	copy(d[:], b[3:])
	return d, nil
}

func appendAnswer(b []byte, a answer) []byte {
	b = append(b, wireVersion, a.status)
	switch a.status {
	case statusReady:
		b = binary.BigEndian.AppendUint64(b, uint64(a.size))
		b = append(b, a.content[:]...)
	case statusPending:
		b = binary.BigEndian.AppendUint64(b, uint64(a.size))
		b = binary.BigEndian.AppendUint64(b, uint64(a.have))
	}
	return b
}

func decodeAnswer(b []byte) (answer, error) {
	var a answer
	if len(b) < 2 || b[0] != wireVersion {
		return a, ErrBadMessage
	}
	a.status = b[1]
	body := b[2:]
	switch a.status {
	case statusReady:
		if len(body) != 8+32 {
			return a, ErrBadMessage
		}
		a.size = int64(binary.BigEndian.Uint64(body))
		copy(a.content[:], body[8:])
	case statusPending:
		if len(body) != 16 {
			return a, ErrBadMessage
		}
		a.size = int64(binary.BigEndian.Uint64(body))
		a.have = int64(binary.BigEndian.Uint64(body[8:]))
	case statusUnknown:
		if len(body) != 0 {
			return a, ErrBadMessage
		}
	default:
		return a, ErrBadMessage
	}
	if a.size < 0 || a.have < 0 {
		return a, ErrBadMessage
	}
	return a, nil
}
