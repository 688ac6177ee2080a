package sched

import (
	"errors"
	"fmt"
)

// Layout limits.
const (
	// MaxStripeWidth is the largest k+m (Reed-Solomon over GF(2^8)).
	MaxStripeWidth = 256
	// MaxChunks bounds the number of chunks (data and parity) of a layout.
	MaxChunks = 1 << 22
)

// ErrLayout reports a layout the scheduler cannot work with.
var ErrLayout = errors.New("sched: bad layout")

// Layout is the geometry of the content, as the scheduler sees it. It
// matches the manifest's: chunk index i is the position in the Merkle leaf
// layer; stripe s starts at chunk s*(K+M) and holds d_s data chunks followed
// by M parity chunks, where d_s = K for every stripe but possibly the last.
// Every data chunk is ChunkSize bytes except the last, which may be short;
// the parity chunks of a stripe are as long as its largest data chunk
// (ChunkSize, or the short last chunk when it is alone in its stripe).
//
// Layout is a plain value; the scheduler copies it.
type Layout struct {
	Size      int64 // content bytes (sum of the data chunks), ≥ 0
	ChunkSize int   // bytes per full chunk, > 0
	K         int   // data chunks per full stripe, ≥ 1
	M         int   // parity chunks per stripe, ≥ 0 (0: no coding)
}

// Validate reports whether the layout is usable.
func (l Layout) Validate() error {
	switch {
	case l.Size < 0:
		return fmt.Errorf("%w: negative size %d", ErrLayout, l.Size)
	case l.ChunkSize <= 0:
		return fmt.Errorf("%w: chunk size %d", ErrLayout, l.ChunkSize)
	case l.K < 1 || l.M < 0 || l.K+l.M > MaxStripeWidth:
		return fmt.Errorf("%w: k=%d m=%d", ErrLayout, l.K, l.M)
	}
	n := (l.Size + int64(l.ChunkSize) - 1) / int64(l.ChunkSize)
	if n > MaxChunks {
		return fmt.Errorf("%w: %d data chunks", ErrLayout, n)
	}
	if total := n + (n+int64(l.K)-1)/int64(l.K)*int64(l.M); total > MaxChunks {
		return fmt.Errorf("%w: %d chunks", ErrLayout, total)
	}
	return nil
}

// DataChunks returns the number of data chunks: ceil(Size/ChunkSize).
func (l Layout) DataChunks() int {
	return int((l.Size + int64(l.ChunkSize) - 1) / int64(l.ChunkSize))
}

// Stripes returns the number of stripes: ceil(DataChunks/K).
func (l Layout) Stripes() int { return (l.DataChunks() + l.K - 1) / l.K }

// Chunks returns the number of chunks, data and parity.
func (l Layout) Chunks() int { return l.DataChunks() + l.Stripes()*l.M }

// StripeStart returns the index of the first chunk of stripe s.
func (l Layout) StripeStart(s int) int { return s * (l.K + l.M) }

// StripeData returns d_s, the number of data chunks of stripe s.
func (l Layout) StripeData(s int) int { return min(l.K, l.DataChunks()-s*l.K) }

// StripeOf returns the stripe of chunk c and its position in it (positions
// below StripeData(stripe) are data chunks, the rest parity).
func (l Layout) StripeOf(c int) (stripe, pos int) { return c / (l.K + l.M), c % (l.K + l.M) }

// IsParity reports whether chunk c is a parity chunk.
func (l Layout) IsParity(c int) bool {
	s, pos := l.StripeOf(c)
	return pos >= l.StripeData(s)
}

// ChunkBytes returns the exact byte size of chunk c.
func (l Layout) ChunkBytes(c int) int {
	s, pos := l.StripeOf(c)
	first := int64(s) * int64(l.K) * int64(l.ChunkSize) // offset of the stripe's data
	if pos >= l.StripeData(s) {
		return int(min(int64(l.ChunkSize), l.Size-first))
	}
	off := first + int64(pos)*int64(l.ChunkSize)
	return int(min(int64(l.ChunkSize), l.Size-off))
}
