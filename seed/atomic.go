package seed

import (
	"os"
	"path/filepath"

	"github.com/shoal-p2p/shoal/chunker"
)

// writeFileAtomic replaces path with data so that a crash leaves either the
// old file or the new one, never a mix (chunker.WriteFileAtomic), creating
// its folder first.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return chunker.WriteFileAtomic(path, data, perm)
}
