//go:build unix

// Package cputime reads the CPU time this process has used, for benchmarks
// that report it beside wall time: on a shared machine wall time mostly
// measures the other load.
package cputime

import (
	"syscall"
	"time"
)

// Process returns the user plus system CPU time of this process so far, or
// 0 if the OS does not say.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
