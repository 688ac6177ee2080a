// Package leakcheck fails tests that leave goroutines running. It is for
// tests only: every goroutine of shoal has an owner that waits for it, so
// after Close nothing of ours may still run.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/testwait"
)

// settle is how long goroutines get to exit after the checked code closed.
const settle = 5 * time.Second

// Check fails t when, after the cleanups registered later (Close calls) ran,
// the goroutine count does not settle back to its value at the call. Call it
// first in a test so that its cleanup runs last.
func Check(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		err := testwait.Poll(settle, func() error {
			if n := runtime.NumGoroutine(); n > before {
				return fmt.Errorf("%d goroutines left running, %d before the test", n, before)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%v:\n%s", err, stacks())
		}
	})
}

// Main runs the tests and then fails the run when goroutines whose stacks
// name marker (a package path such as "shoal-p2p/shoal/chunker.") are
// still running. Use it as TestMain's body: os.Exit(leakcheck.Main(m, marker)).
func Main(m *testing.M, marker string) int {
	code := m.Run()
	if code != 0 {
		return code
	}
	var left []string
	err := testwait.Poll(settle, func() error {
		if left = ours(marker); len(left) > 0 {
			return fmt.Errorf("%d goroutines left running after the tests", len(left))
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v:\n%s\n", err, strings.Join(left, "\n\n"))
		return 1
	}
	return code
}

// ours returns the stacks of running goroutines that name marker, except
// the one running TestMain.
func ours(marker string) []string {
	var left []string
	for _, g := range strings.Split(stacks(), "\n\n") {
		if strings.Contains(g, marker) && !strings.Contains(g, ".TestMain(") {
			left = append(left, g)
		}
	}
	return left
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
