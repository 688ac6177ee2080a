// Package testwait is how shoal's tests wait: for a condition, never for
// the clock. A test that sleeps and then asserts fails on a loaded machine
// and wastes time on an idle one; a test that polls a condition with a
// bounded deadline does neither. It is for tests only.
//
// The one shape is Eventually(t, timeout, what, cond), where cond returns
// nil once the awaited state holds and otherwise an error saying what it
// saw; the last such error is in the failure message. Poll is the same wait
// without a testing.TB, for goroutines other than the test's and for
// helpers such as leakcheck.
//
// Inside a testing/synctest bubble the waits run on the bubble's fake
// clock: the gaps between polls let the simulated world advance, and the
// timeout is fake time too.
package testwait

import (
	"fmt"
	"testing"
	"time"
)

// The gap between two calls of cond starts at minGap and doubles up to
// maxGap: a condition that holds at once costs no wait, one that takes
// seconds costs few calls. A gap is never shorter than the last call of
// cond took, so a costly condition (one that runs a process) uses at most
// half of the wait.
const (
	minGap = time.Millisecond
	maxGap = 20 * time.Millisecond
)

// Poll calls cond until it returns nil or timeout has passed, and returns
// nil, or cond's last error wrapped with the time waited. cond runs at least
// once, and once more after the deadline.
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	gap := minGap
	for {
		start := time.Now()
		err := cond()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("not within %v: %w", timeout, err)
		}
		wait := max(gap, time.Since(start))
		time.Sleep(min(wait, time.Until(deadline)+time.Millisecond)) // the poll's gap: time for the awaited state to come
		gap = min(2*gap, maxGap)
	}
}

// Eventually fails t with t.Fatalf unless cond returns nil within timeout.
// what names the awaited state ("b lists a"), and the failure message adds
// cond's last error. Call it from the test's goroutine; elsewhere use Poll.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}
