//go:build unix

package chunker

import "syscall"

// oNoFollow makes opening a symlink fail.
const oNoFollow = syscall.O_NOFOLLOW
