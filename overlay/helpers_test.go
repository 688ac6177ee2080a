package overlay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// newNode makes a node on loopback, runs it, and at cleanup closes it and
// checks that Run returned nil.
func newNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(context.Background()) }()
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Run: %v", err)
		}
	})
	return n
}

const (
	tagEcho byte = 0x01
	tagSink byte = 0x02
)

// echo serves tagEcho: it copies the stream back to its sender.
func echo(ctx context.Context, c *Conn, s *quic.Stream) {
	io.Copy(s, s)
	s.Close()
}

// roundTrip sends msg on a new echo stream and returns the reply.
func roundTrip(t *testing.T, ctx context.Context, s *quic.Stream, msg []byte) []byte {
	t.Helper()
	var (
		wg   sync.WaitGroup
		werr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := s.Write(msg); err != nil {
			werr = err
			return
		}
		werr = s.Close()
	}()
	got, err := io.ReadAll(s)
	wg.Wait()
	if werr != nil {
		t.Fatalf("writing stream: %v", werr)
	}
	if err != nil {
		t.Fatalf("reading stream: %v", err)
	}
	return got
}

// eventLog records peer events for assertions.
type eventLog struct {
	mu  sync.Mutex
	evs []PeerEvent
	ch  chan PeerEvent
}

func newEventLog() *eventLog { return &eventLog{ch: make(chan PeerEvent, 64)} }

func (l *eventLog) add(ev PeerEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
	select {
	case l.ch <- ev:
	default:
	}
}

func (l *eventLog) all() []PeerEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]PeerEvent(nil), l.evs...)
}

// wait returns the next event or fails after d.
func (l *eventLog) wait(t *testing.T, d time.Duration) PeerEvent {
	t.Helper()
	select {
	case ev := <-l.ch:
		return ev
	case <-time.After(d):
		t.Fatalf("no peer event within %v", d)
		return PeerEvent{}
	}
}

// conns says how many connections a and b each hold, for a wait on them.
func conns(a, b *Node) error {
	if ca, cb := a.Stats().Conns, b.Stats().Conns; ca != 1 || cb != 1 {
		return fmt.Errorf("A holds %d connections, B %d, want 1 each", ca, cb)
	}
	return nil
}
