package chunker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
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

// WriteFileAtomic replaces path with data so that a crash leaves either the
// old file or the new one, never a mix: it writes a temporary file with a
// unique name in the same folder (mode perm), fsyncs it, renames it over
// path and fsyncs the folder. Every error is returned, the folder sync's
// included: without it the rename may not survive a crash. The folder must
// exist. Concurrent writers of one path each write whole files; the last
// rename wins.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
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
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("writing %s: syncing its folder: %w", path, err)
	}
	return nil
}

// writeFileAtomic is WriteFileAtomic for the store's private files.
func writeFileAtomic(path string, data []byte) error { return WriteFileAtomic(path, data, 0o600) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
