package adversary

import (
	"bytes"
	"testing"
)

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
	b, err := CorruptSource{src}.ReadChunk(0, make([]byte, len(orig)))
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
