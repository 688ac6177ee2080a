package netem

import (
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name string
		spec string
		want Config
		bad  bool
	}{
		{"empty", "", Config{}, false},
		{"all", "delay=20ms, jitter=5ms,loss=0.02,reorder=0.1,reorder_delay=40ms,seed=7,queue=100",
			Config{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.02, Reorder: 0.1,
				ReorderDelay: 40 * time.Millisecond, Seed: 7, QueueLimit: 100}, false},
		{"unknown key", "lag=1ms", Config{}, true},
		{"no value", "delay", Config{}, true},
		{"bad duration", "delay=soon", Config{}, true},
		{"bad number", "loss=much", Config{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig(tc.spec)
			if (err != nil) != tc.bad {
				t.Fatalf("error %v, want error: %v", err, tc.bad)
			}
			if !tc.bad && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
