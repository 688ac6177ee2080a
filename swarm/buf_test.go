package swarm

import (
	"testing"
	"unsafe"
)

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

// TestGetBufAligned checks that chunk buffers start on a page, as direct
// I/O of a download's output needs.
func TestGetBufAligned(t *testing.T) {
	for _, n := range []int{1, 4096, 100 << 10, 256 << 10, 1 << 20} {
		bp := getBuf(n)
		if len(*bp) != n {
			t.Fatalf("getBuf(%d): length %d", n, len(*bp))
		}
		if a := uintptr(unsafe.Pointer(unsafe.SliceData(*bp))) % bufAlign; a != 0 {
			t.Fatalf("getBuf(%d): address %% %d = %d, want 0", n, bufAlign, a)
		}
		putBuf(bp)
	}
}
