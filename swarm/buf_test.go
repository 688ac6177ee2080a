package swarm

import "testing"

// TestGetBufNoAlloc checks that a pooled chunk buffer costs no allocation
// once its pool exists.
func TestGetBufNoAlloc(t *testing.T) {
	putBuf(getBuf(256 << 10))
	if n := testing.AllocsPerRun(100, func() { putBuf(getBuf(256 << 10)) }); n > 0 {
		t.Fatalf("getBuf+putBuf: %v allocations per call, want 0", n)
	}
}

func BenchmarkGetBuf(b *testing.B) {
	b.SetBytes(256 << 10)
	b.ReportAllocs()
	for b.Loop() {
		putBuf(getBuf(256 << 10))
	}
}
