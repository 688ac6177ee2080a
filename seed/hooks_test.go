package seed

import (
	"bytes"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/netem"
)

func TestParseNetemSpec(t *testing.T) {
	cases := []struct {
		name string
		spec string
		want netem.Config
		bad  bool
	}{
		{"empty", "", netem.Config{}, false},
		{"all", "delay=20ms, jitter=5ms,loss=0.02,reorder=0.1,reorder_delay=40ms,seed=7,queue=100",
			netem.Config{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.02, Reorder: 0.1,
				ReorderDelay: 40 * time.Millisecond, Seed: 7, QueueLimit: 100}, false},
		{"unknown key", "lag=1ms", netem.Config{}, true},
		{"no value", "delay", netem.Config{}, true},
		{"bad duration", "delay=soon", netem.Config{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNetemSpec(tc.spec)
			if (err != nil) != tc.bad {
				t.Fatalf("error %v, want error: %v", err, tc.bad)
			}
			if !tc.bad && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// fixedSource serves one chunk of fixed bytes.
type fixedSource struct{ data []byte }

func (f fixedSource) ManifestBytes() []byte { return nil }
func (f fixedSource) LeafBytes() []byte     { return nil }
func (f fixedSource) NumChunks() int        { return 1 }
func (f fixedSource) ChunkLen(int) int      { return len(f.data) }
func (f fixedSource) Has(int) bool          { return true }
func (f fixedSource) ReadChunk(_ int, buf []byte) ([]byte, error) {
	return f.data, nil // aliases, as a mapping would
}

func TestCorruptSource(t *testing.T) {
	orig := bytes.Repeat([]byte{1}, 10000)
	src := fixedSource{data: bytes.Clone(orig)}
	if _, wrapped := testSource(src).(corruptSource); wrapped {
		t.Fatalf("without %s the source is wrapped", envTestCorrupt)
	}
	t.Setenv(envTestCorrupt, "1")
	b, err := testSource(src).ReadChunk(0, make([]byte, len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(b, orig) || len(b) != len(orig) {
		t.Fatalf("corrupt source served %d unchanged-looking bytes", len(b))
	}
	if !bytes.Equal(src.data, orig) {
		t.Fatal("corrupt source changed the underlying chunk")
	}
}
