//go:build !unix

package seed

import (
	"os"
	"path/filepath"
)

// lockDataDir opens the lock file; without flock, nothing stops a second
// node on the same folder.
func lockDataDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
}
