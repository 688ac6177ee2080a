package testwait

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestPollReturnsOnceTheConditionHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		calls := 0
		err := Poll(time.Minute, func() error {
			calls++
			if time.Since(start) < time.Second {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Poll: %v, want nil", err)
		}
		if waited := time.Since(start); waited < time.Second || waited > time.Second+maxGap {
			t.Errorf("Poll returned after %v, want between 1s and 1s+%v", waited, maxGap)
		}
		// 1+2+4+8+16 ms, then a call every 20 ms: about 50 calls to the second.
		if calls > 60 {
			t.Errorf("cond called %d times in a second, want at most 60", calls)
		}
	})
}

func TestPollCallsAHoldingConditionOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		calls := 0
		if err := Poll(time.Minute, func() error { calls++; return nil }); err != nil {
			t.Fatal(err)
		}
		if calls != 1 || time.Since(start) != 0 {
			t.Errorf("a condition that holds at once: %d calls, %v waited; want 1 call, no wait", calls, time.Since(start))
		}
	})
}

func TestPollTimesOutWithTheLastError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		n := 0
		err := Poll(3*time.Second, func() error { n++; return fmt.Errorf("attempt %d", n) })
		if err == nil {
			t.Fatal("Poll of a condition that never holds returned nil")
		}
		if waited := time.Since(start); waited < 3*time.Second || waited > 3*time.Second+2*time.Millisecond {
			t.Errorf("Poll gave up after %v, want just after 3s", waited)
		}
		if want := fmt.Sprintf("attempt %d", n); !strings.HasSuffix(err.Error(), want) || !strings.Contains(err.Error(), "3s") {
			t.Errorf("error %q, want the timeout and the last error %q", err, want)
		}
	})
}

// fakeTB records Fatalf without stopping the goroutine.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Fatalf(format string, a ...any) { f.msg = fmt.Sprintf(format, a...) }

func TestEventuallyFailsNamingTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeTB{}
		Eventually(f, time.Second, "b lists a", func() error { return errors.New("b lists nobody") })
		if !strings.Contains(f.msg, "b lists a") || !strings.Contains(f.msg, "b lists nobody") {
			t.Errorf("failure message %q, want what was awaited and the last error", f.msg)
		}
		f = &fakeTB{}
		Eventually(f, time.Second, "b lists a", func() error { return nil })
		if f.msg != "" {
			t.Errorf("a condition that holds failed the test: %q", f.msg)
		}
	})
}

func TestPollGapsNoShorterThanTheCondition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls []time.Time
		err := Poll(2*time.Second, func() error {
			calls = append(calls, time.Now())
			time.Sleep(100 * time.Millisecond) // fake time (synctest): a condition that takes 100 ms
			return errors.New("never")
		})
		if err == nil {
			t.Fatal("Poll of a condition that never holds returned nil")
		}
		for i := 1; i < len(calls); i++ {
			if gap := calls[i].Sub(calls[i-1]); gap < 200*time.Millisecond {
				t.Fatalf("calls %d and %d %v apart, want the 100 ms call plus a gap at least as long", i-1, i, gap)
			}
		}
	})
}
