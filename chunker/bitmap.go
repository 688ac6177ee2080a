package chunker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"

	"github.com/zeebo/blake3"
)

// Bitmap is a set of chunk indices: chunk i is bit i%8 (least significant
// first) of byte i/8. Bits past the chunk count are zero.
type Bitmap []byte

// NewBitmap returns an empty bitmap for n chunks.
func NewBitmap(n int) Bitmap { return make(Bitmap, (n+7)/8) }

// Has reports whether i is in the set (false when out of range).
func (b Bitmap) Has(i int) bool { return i >= 0 && i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }

// Set adds i.
func (b Bitmap) Set(i int) { b[i/8] |= 1 << (i % 8) }

// Count returns the number of members.
func (b Bitmap) Count() int {
	n := 0
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return n
}

// Clone returns a copy.
func (b Bitmap) Clone() Bitmap { return append(Bitmap(nil), b...) }

// Bitmap file ("have" in an item folder); see the package doc.
const (
	bitmapMagic   = "SHBM"
	bitmapVersion = 1
	bitmapHeader  = 4 + 1 + 32 + 4
)

func encodeBitmapFile(id ContentID, n int, b Bitmap) []byte {
	out := make([]byte, 0, bitmapHeader+len(b)+32)
	out = append(out, bitmapMagic...)
	out = append(out, bitmapVersion)
	out = append(out, id[:]...)
	out = binary.BigEndian.AppendUint32(out, uint32(n))
	out = append(out, b...)
	sum := blake3.Sum256(out)
	return append(out, sum[:]...)
}

func decodeBitmapFile(raw []byte, id ContentID, n int) (Bitmap, error) {
	want := bitmapHeader + (n+7)/8 + 32
	if len(raw) != want {
		return nil, fmt.Errorf("bitmap file of %d bytes, want %d: %w", len(raw), want, ErrBadState)
	}
	body, sum := raw[:len(raw)-32], raw[len(raw)-32:]
	if s := blake3.Sum256(body); !bytes.Equal(s[:], sum) {
		return nil, fmt.Errorf("bitmap file checksum: %w", ErrBadState)
	}
	if string(body[:4]) != bitmapMagic || body[4] != bitmapVersion {
		return nil, fmt.Errorf("bitmap file magic or version: %w", ErrBadState)
	}
	if !bytes.Equal(body[5:37], id[:]) || binary.BigEndian.Uint32(body[37:]) != uint32(n) {
		return nil, fmt.Errorf("bitmap file is for other content: %w", ErrBadState)
	}
	b := Bitmap(body[bitmapHeader:]).Clone()
	if n%8 != 0 && len(b) > 0 && b[len(b)-1]>>(n%8) != 0 {
		return nil, fmt.Errorf("bitmap file sets bits past chunk %d: %w", n, ErrBadState)
	}
	return b, nil
}

// writeFileAtomic writes data to path via a temporary file, fsync and
// rename, then fsyncs the folder, so path holds either the old or the new
// bytes after a crash.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
