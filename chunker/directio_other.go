//go:build !linux

package chunker

import "os"

// openDirect: direct I/O is used on Linux only.
func openDirect(path string) (*os.File, directAlign) { return nil, directAlign{} }

func directRefused(err error) bool { return false }
