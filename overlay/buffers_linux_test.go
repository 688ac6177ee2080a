package overlay

import (
	"context"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// logCapture is a slog.Handler that keeps records.
type logCapture struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r)
	return nil
}
func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCapture) WithGroup(string) slog.Handler      { return h }

// TestSocketBuffers checks that the node either got the buffers it asked
// for or said so once, naming the sysctl.
func TestSocketBuffers(t *testing.T) {
	leakcheck.Check(t)
	var logs logCapture
	n := newNode(t, Config{Logger: slog.New(&logs)})
	sc, ok := n.pc.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		t.Fatalf("node socket %T has no SyscallConn", n.pc)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var rcv int
	raw.Control(func(fd uintptr) { rcv, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
	logs.mu.Lock()
	defer logs.mu.Unlock()
	warned := 0
	for _, r := range logs.recs {
		if r.Level == slog.LevelWarn && strings.Contains(r.Message, "sysctl") {
			warned++
		}
	}
	switch {
	case rcv/2 >= defaultSocketBuffer && warned != 0:
		t.Errorf("receive buffer %d bytes is enough, yet %d warnings were logged", rcv/2, warned)
	case rcv/2 < defaultSocketBuffer && warned != 1:
		t.Errorf("receive buffer %d bytes is short and %d warnings were logged, want 1", rcv/2, warned)
	}
	t.Logf("receive buffer %d bytes, warnings %d", rcv/2, warned)
}
