//go:build !linux

package seed

import "os"

func renameNoReplace(src, dst string) error { return renameIfAbsent(src, dst) }

func reflink(dst, src *os.File) bool { return false }
