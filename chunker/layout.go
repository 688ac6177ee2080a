package chunker

import "fmt"

// Chunk size and stripe limits. See the package doc for the rules.
const (
	MinChunkSize     = 16 << 10  // 16 KiB
	MaxChunkSize     = 4 << 20   // 4 MiB
	DefaultChunkSize = 256 << 10 // 256 KiB
	// TargetDataChunks is the data-chunk count above which the automatic
	// chunk size doubles (until MaxChunkSize): inputs up to 16 GiB keep
	// 256 KiB chunks, up to 256 GiB stay within 65,536 data chunks.
	TargetDataChunks = 1 << 16
	// MaxChunks bounds the number of chunks (leaves, data and parity) of any
	// manifest, so a leaf layer is at most 128 MiB.
	MaxChunks = 1 << 22

	DefaultDataShards   = 16  // k
	DefaultParityShards = 4   // m
	MaxShards           = 256 // k+m
)

// AutoChunkSize returns the chunk size the publisher picks for size bytes of
// content: DefaultChunkSize, doubled while the content would need more than
// TargetDataChunks data chunks, at most MaxChunkSize.
func AutoChunkSize(size int64) int {
	cs := DefaultChunkSize
	for cs < MaxChunkSize && ceilDiv(size, int64(cs)) > TargetDataChunks {
		cs *= 2
	}
	return cs
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// layout is the geometry of a manifest, computed once by Validate-checked
// fields. All methods are cheap and allocation free.
//
// Chunk index i is the position in the leaf layer. Stripe s starts at chunk
// s*(k+m) and holds d_s data chunks followed by m parity chunks; d_s = k for
// every stripe but possibly the last.

// NumDataChunks returns the number of data chunks: ceil(Size/ChunkSize).
func (m *Manifest) NumDataChunks() int {
	return int(ceilDiv(m.Size, int64(m.ChunkSize)))
}

// NumStripes returns the number of stripes: ceil(NumDataChunks/k).
func (m *Manifest) NumStripes() int {
	return int(ceilDiv(int64(m.NumDataChunks()), int64(m.DataShards)))
}

// NumChunks returns the number of chunks, data and parity: the leaf count.
func (m *Manifest) NumChunks() int {
	return m.NumDataChunks() + m.NumStripes()*m.ParityShards
}

// StripeWidth returns k+m, the chunk count of every full stripe.
func (m *Manifest) StripeWidth() int { return m.DataShards + m.ParityShards }

// StripeStart returns the chunk index of the first chunk of stripe s.
func (m *Manifest) StripeStart(s int) int { return s * m.StripeWidth() }

// StripeDataCount returns d_s, the number of data chunks of stripe s.
func (m *Manifest) StripeDataCount(s int) int {
	d := m.NumDataChunks() - s*m.DataShards
	return min(d, m.DataShards)
}

// StripeLen returns the number of chunks of stripe s: d_s+m.
func (m *Manifest) StripeLen(s int) int { return m.StripeDataCount(s) + m.ParityShards }

// StripeOf returns the stripe of chunk i and its position within the stripe
// (positions below d_s are data, the rest parity).
func (m *Manifest) StripeOf(i int) (stripe, pos int) {
	w := m.StripeWidth()
	return i / w, i % w
}

// IsParity reports whether chunk i is a parity chunk.
func (m *Manifest) IsParity(i int) bool {
	s, pos := m.StripeOf(i)
	return pos >= m.StripeDataCount(s)
}

// DataIndex returns the position of data chunk i among the data chunks
// (its content offset is DataIndex*ChunkSize), or -1 for a parity chunk.
func (m *Manifest) DataIndex(i int) int {
	s, pos := m.StripeOf(i)
	if pos >= m.StripeDataCount(s) {
		return -1
	}
	return s*m.DataShards + pos
}

// ChunkOfData returns the chunk index of data chunk number g.
func (m *Manifest) ChunkOfData(g int) int {
	return g/m.DataShards*m.StripeWidth() + g%m.DataShards
}

// DataChunkOffset returns the content offset of data chunk i, or -1 for a
// parity chunk.
func (m *Manifest) DataChunkOffset(i int) int64 {
	g := m.DataIndex(i)
	if g < 0 {
		return -1
	}
	return int64(g) * int64(m.ChunkSize)
}

// stripeShardLen returns the coding length of stripe s: the length of its
// first data chunk (ChunkSize except for a one-chunk last stripe). Parity
// chunks of the stripe have this length; shorter data chunks are zero-padded
// to it for coding.
func (m *Manifest) stripeShardLen(s int) int {
	return int(min(int64(m.ChunkSize), m.Size-int64(s)*int64(m.DataShards)*int64(m.ChunkSize)))
}

// ChunkLen returns the exact (unpadded) byte length of chunk i: ChunkSize for
// every data chunk but the last, the stripe's coding length for parity.
func (m *Manifest) ChunkLen(i int) int {
	s, pos := m.StripeOf(i)
	if pos >= m.StripeDataCount(s) {
		return m.stripeShardLen(s)
	}
	off := int64(s*m.DataShards+pos) * int64(m.ChunkSize)
	return int(min(int64(m.ChunkSize), m.Size-off))
}

// parityOffset returns the offset of parity chunk i in a parity file, which
// holds every stripe's parity chunks back to back in stripe order.
func (m *Manifest) parityOffset(i int) int64 {
	s, pos := m.StripeOf(i)
	j := pos - m.StripeDataCount(s)
	return int64(s)*int64(m.ParityShards)*int64(m.ChunkSize) + int64(j)*int64(m.stripeShardLen(s))
}

// paritySize returns the size of the parity file.
func (m *Manifest) paritySize() int64 {
	n := m.NumStripes()
	if n == 0 || m.ParityShards == 0 {
		return 0
	}
	return int64(n-1)*int64(m.ParityShards)*int64(m.ChunkSize) + int64(m.ParityShards)*int64(m.stripeShardLen(n-1))
}

func (m *Manifest) checkIndex(i int) error {
	if i < 0 || i >= m.NumChunks() {
		return fmt.Errorf("%w: chunk %d of %d", ErrBadIndex, i, m.NumChunks())
	}
	return nil
}

func (m *Manifest) checkStripe(s int) error {
	if s < 0 || s >= m.NumStripes() {
		return fmt.Errorf("%w: stripe %d of %d", ErrBadIndex, s, m.NumStripes())
	}
	return nil
}
