//go:build !unix

package seed

import "os"

func fileIdentity(fi os.FileInfo) (dev, ino uint64, ok bool) { return 0, 0, false }
