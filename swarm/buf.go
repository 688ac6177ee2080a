package swarm

import (
	"io"
	"sync"
	"unsafe"
)

// Buffers and stream helpers shared by the upload side (server.go) and the
// download side (run.go, client.go).

// sendPiece is the unit of rate limiting: under a rate limit, chunks are
// written and read in pieces of at most this many bytes.
const sendPiece = 64 << 10

// stallPiece is the unit of stall detection on upload: without a rate
// limit a chunk is written in pieces of at most this many bytes, each
// within ServerConfig.StallTimeout. A 256 KiB chunk (the default size) is
// one write: in alternated BenchmarkTransfer pairs, 64 KiB pieces cost
// about 5 % more allocations per transfer and looked slower.
const stallPiece = 256 << 10

// chunk buffers, pooled by capacity class (a power of two).
var bufPools sync.Map // int -> *sync.Pool

// bufAlign is the address alignment of chunk buffers: a page, so that a
// download writes and serves whole chunks with direct I/O (chunker's
// content.useDirect), which needs aligned buffers.
const bufAlign = 4096

// alignedBuf returns a zeroed buffer of length and capacity c whose first
// byte sits at a multiple of bufAlign.
func alignedBuf(c int) []byte {
	b := make([]byte, c+bufAlign-1)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b)))) & (bufAlign - 1)
	return b[off : off+c : off+c]
}

func getBuf(n int) *[]byte {
	c := 1
	for c < n {
		c <<= 1
	}
	p, ok := bufPools.Load(c)
	if !ok { // allocate a pool only on a miss, not on every call
		p, _ = bufPools.LoadOrStore(c, &sync.Pool{New: func() any { b := alignedBuf(c); return &b }})
	}
	bp := p.(*sync.Pool).Get().(*[]byte)
	*bp = (*bp)[:n]
	return bp
}

func putBuf(bp *[]byte) {
	c := cap(*bp)
	if p, ok := bufPools.Load(c); ok {
		p.(*sync.Pool).Put(bp)
	}
}

// readFull reads exactly len(p) bytes.
func readFull(r io.Reader, p []byte) error {
	_, err := io.ReadFull(r, p)
	if err != nil {
		return noEOF(err)
	}
	return nil
}

// readGrowing reads exactly n bytes into a buffer that grows with the bytes
// received (by doubling from 64 KiB), never allocating the announced length
// up front.
func readGrowing(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, 0, min(n, 64<<10))
	for len(b) < n {
		if len(b) == cap(b) {
			b = append(b, make([]byte, min(cap(b), n-len(b)))...)[:len(b)]
		}
		m, err := r.Read(b[len(b):min(cap(b), n)])
		b = b[:len(b)+m]
		if err != nil && len(b) < n {
			return nil, noEOF(err)
		}
	}
	return b, nil
}
