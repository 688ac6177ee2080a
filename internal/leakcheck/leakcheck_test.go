package leakcheck

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/testwait"
)

// fakeTB records Errorf calls and runs cleanups on demand.
type fakeTB struct {
	testing.TB
	cleanups []func()
	failed   bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Cleanup(fn func())     { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(string, ...any) { f.failed = true }
func (f *fakeTB) runCleanups() {
	for _, fn := range f.cleanups {
		fn()
	}
}

func TestCheckCatchesALeak(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	f := &fakeTB{}
	Check(f)
	go func() { <-stop }()
	f.runCleanups()
	if !f.failed {
		t.Fatal("a goroutine left running was not reported")
	}
}

func TestCheckPassesWhenClean(t *testing.T) {
	f := &fakeTB{}
	Check(f)
	done := make(chan struct{})
	go func() { close(done) }()
	<-done
	f.runCleanups()
	if f.failed {
		t.Fatal("reported a leak where the goroutine had exited")
	}
}

func TestOursFindsMarkedGoroutines(t *testing.T) {
	stop := make(chan struct{})
	go parkHere(stop)
	defer close(stop)
	testwait.Eventually(t, 10*time.Second, "ours finds the parked goroutine by its marker", func() error {
		if left := ours("leakcheck.parkHere"); len(left) != 1 {
			return fmt.Errorf("%d goroutines found", len(left))
		}
		return nil
	})
}

func parkHere(stop chan struct{}) { <-stop }
