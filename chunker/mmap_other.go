//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64))

package chunker

// mapFile is not used on this platform: Publish reads with pread.
func mapFile(path string, size int64) (data []byte, unmap func()) { return nil, nil }
