package swarm

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// haveQueue holds chunk indexes verified locally and not yet announced on
// one session. Overflow policy: none needed: the driver announces a chunk
// when it is verified or rebuilt (at most twice if both race), so the queue
// never holds more than twice the chunk count; and a session whose peer
// stops reading ends after ServerConfig.StallTimeout, dropping its queue.
type haveQueue struct {
	mu      sync.Mutex
	pending []uint32
	wake    chan struct{} // capacity 1: "pending is not empty"
}

func newHaveQueue() haveQueue { return haveQueue{wake: make(chan struct{}, 1)} }

func (q *haveQueue) queueHave(i uint32) {
	q.mu.Lock()
	q.pending = append(q.pending, i)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take removes up to MaxHaveBatch queued indexes and appends them to buf.
func (q *haveQueue) take(buf []uint32) []uint32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(q.pending), MaxHaveBatch)
	buf = append(buf, q.pending[:n]...)
	q.pending = append(q.pending[:0], q.pending[n:]...)
	if len(q.pending) > 0 {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return buf
}

// sendHaves writes have messages for queued indexes until ctx ends or a
// write fails; each write must complete within stall (a peer that stops
// reading its session loses it, and the queue stops growing).
func (q *haveQueue) sendHaves(ctx context.Context, st Stream, stall time.Duration) error {
	var idx []uint32
	var out []byte
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-q.wake:
		}
		for {
			idx = q.take(idx[:0])
			if len(idx) == 0 {
				break
			}
			out = AppendMessage(out[:0], Message{Type: MsgHave, Indexes: idx})
			if err := st.SetWriteDeadline(time.Now().Add(stall)); err != nil {
				return err
			}
			if _, err := st.Write(out); err != nil {
				return fmt.Errorf("writing have: %w", err)
			}
		}
	}
}

// helloFor builds a hello from a has function.
func helloFor(n int, has func(int) bool) Message {
	bm := make([]byte, bitmapLen(n))
	all := true
	for i := range n {
		if has(i) {
			bm[i/8] |= 1 << (i % 8)
		} else {
			all = false
		}
	}
	if all {
		return Message{Type: MsgHello, N: n, All: true}
	}
	return Message{Type: MsgHello, N: n, Bitmap: bm}
}

// checkHello validates a peer's hello against our chunk count.
func checkHello(m Message, n int) error {
	if m.Type != MsgHello {
		return fmt.Errorf("%w: first session message is type %d, want hello", ErrProtocol, m.Type)
	}
	if m.N != n {
		return fmt.Errorf("%w: hello for %d chunks, content has %d", ErrProtocol, m.N, n)
	}
	return nil
}

// checkHave validates have indexes against the chunk count.
func checkHave(m Message, n int) error {
	if m.Type != MsgHave {
		return fmt.Errorf("%w: session message type %d after hello", ErrProtocol, m.Type)
	}
	for _, i := range m.Indexes {
		if int64(i) >= int64(n) {
			return fmt.Errorf("%w: have for chunk %d of %d", ErrProtocol, i, n)
		}
	}
	return nil
}

// serverSession is the serving end of a control stream.
type serverSession struct {
	haveQueue
	cancel context.CancelFunc
	peer   identity.PeerID
}

// serveSession runs the serving end of a session until either side ends it.
//
// The peer's hello must arrive within HelloTimeout of the stream's start
// (ServeStream set the deadline), and its announced length must fit the
// content's bitmap before anything is allocated.
func (s *Server) serveSession(ctx context.Context, peer identity.PeerID, st Stream, it *served) {
	if !s.acquireSession(peer) {
		s.refuse(st, StatusBusy, "too many sessions")
		return
	}
	defer s.releaseSession(peer)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ss := &serverSession{haveQueue: newHaveQueue(), cancel: cancel, peer: peer}
	it.mu.Lock()
	it.sessions[ss] = struct{}{}
	it.peerSessions[peer]++
	it.mu.Unlock()
	defer func() {
		it.mu.Lock()
		delete(it.sessions, ss)
		last := false
		if it.peerSessions[peer]--; it.peerSessions[peer] <= 0 {
			delete(it.peerSessions, peer)
			last = true
		}
		it.mu.Unlock()
		if last && it.super != nil {
			it.announceMany(it.super.forget(peer))
		}
	}()

	n := it.src.NumChunks()
	mr := msgReader{r: st, chunks: n}
	m, err := mr.next()
	if err == nil {
		err = checkHello(m, n)
	}
	if err != nil {
		s.counters.badRequests.Add(1)
		s.clog.debug("bad session hello", "peer", peer.Short(), "err", err)
		reset(st, CodeProtocol)
		return
	}
	// Registered before the snapshot: a chunk verified in between is
	// announced twice, never missed.
	out := AppendResponseHeader(nil, StatusOK, 0)
	out = AppendMessage(out, helloFor(n, it.src.Has))
	if _, err := st.Write(out); err != nil {
		return
	}
	if err := st.SetDeadline(time.Time{}); err != nil {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := ss.sendHaves(ctx, st, s.cfg.StallTimeout); err != nil && ctx.Err() == nil {
			reset(st, CodeCancelled)
		}
		cancel()
	})
	defer wg.Wait()
	defer cancel()
	for {
		m, err := mr.next()
		if err != nil {
			return
		}
		if err := checkHave(m, n); err != nil {
			reset(st, CodeProtocol)
			return
		}
		if it.super != nil {
			it.super.held(peer, m.Indexes)
		}
	}
}
