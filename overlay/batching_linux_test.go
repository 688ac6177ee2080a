//go:build linux

package overlay

import (
	"net"
	"testing"

	"github.com/shoal-p2p/shoal/overlay/internal/udpbatch"
)

// checkBatching fails t unless pc is a batching socket that sent many
// packets per system call.
func checkBatching(t *testing.T, pc net.PacketConn) {
	t.Helper()
	bc, ok := pc.(*udpbatch.Conn)
	if !ok {
		t.Fatalf("default node socket is %T, want *udpbatch.Conn", pc)
	}
	st := bc.Stats()
	if st.Sent < 2*st.Sends {
		t.Errorf("batched node sent %d packets in %d system calls: no batching", st.Sent, st.Sends)
	}
	t.Logf("batched node: %+v", st)
}
