//go:build linux

package udpbatch

import (
	"net"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/testwait"
)

// checkSent fails t unless the batching Conn c sent want packets.
func checkSent(t *testing.T, c net.PacketConn, want int) {
	t.Helper()
	st := c.(*Conn).Stats()
	if st.Sent != uint64(want) {
		t.Fatalf("sent %d packets, want %d", st.Sent, want)
	}
	t.Logf("sender %+v", st)
}

// TestCoalesced checks that the offloads are really used on this kernel:
// a burst written faster than one system call goes out in GSO batches and
// the receiver reads some of it as one coalesced buffer. Skipped where the
// kernel has no UDP GSO/GRO.
func TestCoalesced(t *testing.T) {
	src, dst := New(listen(t)).(*Conn), New(listen(t)).(*Conn)
	defer src.Close()
	defer dst.Close()
	const count = 150
	r := receive(dst, src, count, 1200) // while writing, so the receive buffer never overflows
	for i := range count {
		if _, err := src.WriteTo(packet(i, 1200), dst.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-r.done; err != nil {
		t.Fatalf("%v (sender %+v)", err, src.Stats())
	}
	if !src.gso.Load() {
		t.Skip("kernel refused UDP segmentation offload")
	}
	if dst.Stats().Coalesced == 0 {
		t.Fatalf("no read returned more than one datagram: receive offload unused")
	}
	t.Logf("sender %+v; receiver %+v", src.Stats(), dst.Stats())
}

// TestWithoutOffload: once segmentation offload is off (as after the kernel
// refused it), batches go out packet by packet and still arrive whole and
// in order.
func TestWithoutOffload(t *testing.T) {
	src, dst := New(listen(t)).(*Conn), New(listen(t))
	defer src.Close()
	defer dst.Close()
	src.gso.Store(false)
	const count = 100
	r := receive(dst, src, count, 1000)
	for i := range count {
		if _, err := src.WriteTo(packet(i, 1000), dst.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if i%32 == 31 { // uncoalesced, 90 packets fill a default receive buffer
			testwait.Eventually(t, 10*time.Second, "the reader catches up", r.caughtUp(i+1))
		}
	}
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	if st := src.Stats(); st.Sends != st.Sent || st.Sent != count {
		t.Fatalf("without offload %d packets went out in %d sends, want %d in as many", st.Sent, st.Sends, count)
	}
}
