package swarm

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestBucket(t *testing.T) {
	tests := []struct {
		name  string
		rate  int64
		burst int
		sends []int
		want  time.Duration // total virtual time
	}{
		{"unlimited", 0, 0, []int{1 << 30}, 0},
		{"within burst", 1 << 20, 256 << 10, []int{128 << 10, 128 << 10}, 0},
		{"one second of debt", 1 << 20, 256 << 10, []int{256 << 10, 1 << 20}, time.Second},
		{"steady", 1 << 20, 64 << 10, []int{64 << 10, 512 << 10, 512 << 10}, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBucket(tc.rate, tc.burst)
				start := time.Now()
				for _, n := range tc.sends {
					if err := b.wait(context.Background(), n); err != nil {
						t.Fatalf("wait(%d): %v", n, err)
					}
				}
				if got := time.Since(start); got < tc.want-time.Millisecond || got > tc.want+time.Millisecond {
					t.Fatalf("sends %v at %d B/s took %v, want %v", tc.sends, tc.rate, got, tc.want)
				}
			})
		})
	}
}

func TestBucketCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(1000, 1000)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		b.wait(ctx, 1000)
		if err := b.wait(ctx, 10000); err == nil {
			t.Fatalf("wait for 10 s of tokens with a 1 s context returned nil")
		}
	})
}
