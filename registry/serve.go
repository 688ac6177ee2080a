package registry

import (
	"context"
	"io"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// ServeStream answers one mapping question from peer on s (a stream tagged
// Tag). It returns when the answer is sent or the stream fails.
func (m *Mirror) ServeStream(ctx context.Context, peer identity.PeerID, s Stream) {
	if !m.acquireMap(peer) {
		m.m.mapRefused.Inc()
		s.Reset()
		return
	}
	defer m.releaseMap(peer)
	s.SetDeadline(time.Now().Add(mapStreamTimeout))
	stop := context.AfterFunc(ctx, s.Reset)
	defer stop()
	b, err := io.ReadAll(io.LimitReader(s, maxWireLen))
	if err != nil {
		s.Reset()
		return
	}
	d, err := decodeRequest(b)
	if err != nil {
		s.Reset()
		return
	}
	if _, err := s.Write(appendAnswer(nil, m.answerFor(d))); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

func (m *Mirror) answerFor(d Digest) answer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.blobs[d]; ok {
		return answer{status: statusReady, size: e.Size, content: e.Content}
	}
	if f := m.flights[d]; f != nil && (f.upstream.Load() || f.claimed.Load()) {
		return answer{status: statusPending, size: f.size.Load(), have: f.have.Load()}
	}
	return answer{status: statusUnknown}
}

func (m *Mirror) acquireMap(p identity.PeerID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mapStreams >= mapStreamsGlobal || m.mapPerPeer[p] >= mapStreamsPerPeer {
		return false
	}
	m.mapStreams++
	m.mapPerPeer[p]++
	return true
}

func (m *Mirror) releaseMap(p identity.PeerID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mapStreams--
	if m.mapPerPeer[p]--; m.mapPerPeer[p] <= 0 {
		delete(m.mapPerPeer, p)
	}
}
