//go:build unix

package sched

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) the process used so
// far. Benchmarks report it per op beside wall time, because on a shared
// machine wall time mostly measures the other load.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
