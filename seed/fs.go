package seed

import (
	"io/fs"
	"os"
)

// renameIfAbsent renames src to dst unless dst exists. Between its check
// and the rename another process may create dst; renameNoReplace uses it
// only where the kernel offers nothing better.
func renameIfAbsent(src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: fs.ErrExist}
	}
	return os.Rename(src, dst)
}

// checkDirIdentity checks that path is still the folder (not a symlink)
// with the device and inode recorded when it was made.
func checkDirIdentity(path string, dev, ino uint64) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	d, i, ok := fileIdentity(fi)
	if !fi.IsDir() || (ok && (d != dev || i != ino)) {
		return Errorf(ErrExists, "%s is not the folder shoal made for this download; move it away and run the same command again", path)
	}
	return nil
}

// dirIdentity returns a folder's device and inode.
func dirIdentity(path string) (dev, ino uint64, err error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0, 0, err
	}
	dev, ino, _ = fileIdentity(fi)
	return dev, ino, nil
}
