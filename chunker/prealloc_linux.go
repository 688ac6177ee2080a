package chunker

import (
	"os"

	"golang.org/x/sys/unix"
)

// preallocate sets f's size, reserving blocks where the file system can.
func preallocate(f *os.File, size int64) error {
	if size > 0 {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err == nil {
			return nil
		}
	}
	return f.Truncate(size)
}
