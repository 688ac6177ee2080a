//go:build !linux

package chunker

import "os"

// preallocate sets f's size.
func preallocate(f *os.File, size int64) error { return f.Truncate(size) }
