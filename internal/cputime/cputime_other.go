//go:build !unix

// Package cputime reads the CPU time this process has used, for benchmarks
// that report it beside wall time: on a shared machine wall time mostly
// measures the other load.
package cputime

import "time"

// Process returns 0: this OS has no getrusage.
func Process() time.Duration { return 0 }
