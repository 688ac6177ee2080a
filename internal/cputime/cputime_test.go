package cputime

import (
	"runtime"
	"testing"
	"time"
)

func TestProcessGrows(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no getrusage")
	}
	before := Process()
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	if after := Process(); after <= before {
		t.Fatalf("CPU time went from %v to %v over 50 ms of spinning", before, after)
	}
}
