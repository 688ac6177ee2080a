// Package benchfile holds the file helpers the benchmark programs
// (bench, cmd/shoal-bench) share: sizes written as 1GiB, the random source
// file, and the byte-for-byte check of every output.
package benchfile

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// ParseSize reads a positive size with an optional B, KiB, MiB or GiB suffix
// ("1GiB", "1.5MiB", "4096").
func ParseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional B/KiB/MiB/GiB suffix", s)
	}
	return int64(n * float64(mult)), nil
}

// WriteRandom creates path holding size bytes of ChaCha8 output from seed:
// the same seed and size always give the same file.
func WriteRandom(path string, size int64, seed [32]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.NewChaCha8(seed), size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SameFile compares two files byte for byte; its error names the first
// 1 MiB block that differs, or where the lengths part.
func SameFile(a, b string) error {
	fa, err := os.Open(a)
	if err != nil {
		return err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return err
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return fmt.Errorf("differs from the source in the 1 MiB block at offset %d", off)
		}
		off += int64(na)
		if ea != nil || eb != nil {
			if (ea == nil) != (eb == nil) {
				return fmt.Errorf("length differs from the source near offset %d", off)
			}
			return nil
		}
	}
}
