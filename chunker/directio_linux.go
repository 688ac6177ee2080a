package chunker

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// openDirect opens path for direct I/O (O_DIRECT: bytes move between the
// caller's buffer and the device without a copy into the page cache) and
// returns the alignment the file system asks of buffer addresses and of
// file offsets and lengths (statx STATX_DIOALIGN). It returns nil where
// the file system does not offer direct I/O; callers then use the page
// cache.
func openDirect(path string) (*os.File, directAlign) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_DIOALIGN|unix.STATX_TYPE, &st); err != nil ||
		st.Mask&unix.STATX_DIOALIGN == 0 || st.Dio_mem_align == 0 || st.Dio_offset_align == 0 ||
		st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, directAlign{}
	}
	f, err := os.OpenFile(path, os.O_RDWR|oNoFollow|unix.O_DIRECT, 0)
	if err != nil {
		return nil, directAlign{}
	}
	return f, directAlign{mem: uintptr(st.Dio_mem_align), off: int64(st.Dio_offset_align)}
}

// directRefused reports whether err is the kernel refusing a direct
// transfer (a misaligned request the statx answer did not predict), as
// opposed to a real I/O error: the caller retries through the page cache.
func directRefused(err error) bool { return errors.Is(err, unix.EINVAL) }
