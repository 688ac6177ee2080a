//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64)

package chunker

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps a whole file read-only for publishing, so chunks are hashed
// and coded straight from the page cache without a copy. It returns nil if
// the file cannot be mapped; the caller then reads with pread.
func mapFile(path string, size int64) (data []byte, unmap func()) {
	if size <= 0 {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil
	}
	_ = unix.Madvise(b, unix.MADV_SEQUENTIAL)
	return b, func() { unix.Munmap(b) }
}
