//go:build !linux

package seed

import "os"

func renameNoReplace(src, dst string) error { return renameIfAbsent(src, dst) }

func reflink(dst, src *os.File) bool { return false }

// diskBytes is the disk space fi's file takes; here its size.
func diskBytes(fi os.FileInfo) int64 { return fi.Size() }
