package chunker

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// preallocate sets f's size, reserving its blocks where the file system
// can, so that a full disk shows up here, before any chunk is fetched, and
// not halfway through a download. File systems without fallocate get a
// sparse file.
func preallocate(f *os.File, size int64) error {
	if size > 0 {
		err := unix.Fallocate(int(f.Fd()), 0, 0, size)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
			return &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
		}
	}
	return f.Truncate(size)
}
