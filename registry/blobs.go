package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// blobEntry is a verified blob the node holds.
type blobEntry struct {
	Content [32]byte `json:"-"`
	ID      string   `json:"content"` // hex of Content
	Path    string   `json:"path"`
	Size    int64    `json:"size"`
}

// flight is one fetch of a blob; requests for the same digest share it.
type flight struct {
	done   chan struct{}
	err    error  // set before done closes
	result string // resultPeer or resultUpstream, set before done closes

	claimed  atomic.Bool  // nobody else had it; this node fetches it: answer "pending"
	upstream atomic.Bool  // the bytes come from the upstream: answer "pending"
	size     atomic.Int64 // expected size, 0 unknown
	have     atomic.Int64 // bytes fetched so far
	verified atomic.Bool  // the upstream's bytes hash to the digest

	// The upstream path: started closes once tmp (the file being written)
	// and size are set, so that clients can stream the bytes as they come.
	started chan struct{}
	tmp     string

	moveMu sync.Mutex
	moved  chan struct{} // closed and replaced when have grows or verified is set
}

// wake tells streaming clients that the fetch moved.
func (f *flight) wake() {
	f.moveMu.Lock()
	close(f.moved)
	f.moved = make(chan struct{})
	f.moveMu.Unlock()
}

func (f *flight) movedCh() <-chan struct{} {
	f.moveMu.Lock()
	defer f.moveMu.Unlock()
	return f.moved
}

var (
	errBadMapping = errors.New("registry: peer mapped the digest to other content")
	errStalled    = errors.New("registry: fetch from peers made no progress")
	errNoPeers    = errors.New("registry: no peer holds the blob")
	errStopping   = errors.New("registry: mirror stopping")
)

func (m *Mirror) held(d Digest) (blobEntry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.blobs[d]
	return e, ok
}

// serveBlob serves d, fetching it first when the node does not hold it.
// HEAD of a missing blob fetches it too: clients follow it with a GET.
func (m *Mirror) serveBlob(w http.ResponseWriter, r *http.Request, up *upstream, repo string, d Digest, head bool) {
	e, ok := m.held(d)
	result := resultHit
	if !ok {
		f := m.join(up, repo, d)
		if f == nil {
			writeError(w, http.StatusTooManyRequests, codeTooMany, fmt.Sprintf("the mirror is fetching %d blobs already; retry", maxFlights))
			m.m.blobRequests.WithLabelValues(resultError).Inc()
			return
		}
		select {
		case <-f.done:
		case <-f.started:
			if !head && r.Header.Get("Range") == "" && f.size.Load() > 0 {
				m.streamBlob(w, r, f, d)
				return
			}
			select {
			case <-f.done:
			case <-r.Context().Done():
				m.m.blobRequests.WithLabelValues(resultError).Inc()
				return
			}
		case <-r.Context().Done():
			m.m.blobRequests.WithLabelValues(resultError).Inc()
			return
		}
		if f.err != nil {
			m.blobError(w, f.err, d)
			return
		}
		if e, ok = m.held(d); !ok {
			m.blobError(w, errStopping, d)
			return
		}
		result = f.result
	}
	file, err := os.Open(e.Path)
	if err == nil {
		var st os.FileInfo
		if st, err = file.Stat(); err == nil && st.Size() != e.Size {
			err = fmt.Errorf("%s changed size", e.Path)
		}
	}
	if err != nil {
		if file != nil {
			file.Close()
		}
		m.dropBlob(d)
		m.log.Warn("held blob gone", "content", d.String(), "err", err)
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the mirror lost its copy of "+d.String()+"; retry")
		m.m.blobRequests.WithLabelValues(resultError).Inc()
		return
	}
	defer file.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Etag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", time.Time{}, file)
	m.m.servedBytes.Add(float64(cw.n))
	m.m.blobRequests.WithLabelValues(result).Inc()
}

// streamBlob sends d to the client while the upstream fetch writes it,
// holding back the last byte until the whole blob's SHA-256 matched d. If
// it does not, the connection is cut: the client has a short body and
// never the blob's last byte.
func (m *Mirror) streamBlob(w http.ResponseWriter, r *http.Request, f *flight, d Digest) {
	file, err := os.Open(f.tmp)
	if err != nil {
		// Renamed already: the fetch is about to end.
		select {
		case <-f.done:
		case <-r.Context().Done():
			return
		}
		if f.err != nil {
			m.blobError(w, f.err, d)
			return
		}
		m.serveBlob(w, r, nil, "", d, false)
		return
	}
	defer file.Close()
	size := f.size.Load()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Etag", `"`+d.String()+`"`)
	h.Set("Content-Length", fmt.Sprint(size))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	buf := make([]byte, 256<<10)
	var off int64
	for {
		moved := f.movedCh()
		limit := min(f.have.Load(), size-1)
		if f.verified.Load() {
			limit = size
		}
		for off < limit {
			k, err := file.ReadAt(buf[:min(int64(len(buf)), limit-off)], off)
			if k > 0 {
				if _, werr := w.Write(buf[:k]); werr != nil {
					m.m.servedBytes.Add(float64(off))
					m.m.blobRequests.WithLabelValues(resultError).Inc()
					return
				}
				off += int64(k)
			}
			if err != nil && k == 0 {
				panic(http.ErrAbortHandler)
			}
		}
		rc.Flush()
		if off == size {
			m.m.servedBytes.Add(float64(off))
			m.m.blobRequests.WithLabelValues(resultUpstream).Inc()
			return
		}
		select {
		case <-moved:
		case <-f.done:
			if f.err != nil {
				// Never verified: cut the connection before the last byte.
				m.m.servedBytes.Add(float64(off))
				m.m.blobRequests.WithLabelValues(resultError).Inc()
				panic(http.ErrAbortHandler)
			}
		case <-r.Context().Done():
			m.m.servedBytes.Add(float64(off))
			m.m.blobRequests.WithLabelValues(resultError).Inc()
			return
		}
	}
}

func (m *Mirror) blobError(w http.ResponseWriter, err error, d Digest) {
	var ue *upstreamError
	switch {
	case errors.Is(err, errNotFound):
		m.m.blobRequests.WithLabelValues(resultNotFound).Inc()
		writeError(w, http.StatusNotFound, codeBlobUnknown, "blob "+d.String()+" unknown to peers and to the upstream")
		return
	case errors.As(err, &ue):
		writeError(w, ue.status, ue.code, ue.msg+"; no peer holds "+d.String())
	case errors.Is(err, errStopping), errors.Is(err, context.Canceled):
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the mirror is stopping; retry")
	default:
		writeError(w, http.StatusBadGateway, codeUnknown, "fetching "+d.String()+": "+err.Error())
	}
	m.m.blobRequests.WithLabelValues(resultError).Inc()
}

// join returns the fetch of d in progress, starting one if none is, or nil
// when maxFlights fetches run already.
func (m *Mirror) join(up *upstream, repo string, d Digest) *flight {
	m.mu.Lock()
	if f := m.flights[d]; f != nil {
		m.mu.Unlock()
		return f
	}
	if len(m.flights) >= maxFlights {
		m.mu.Unlock()
		return nil
	}
	f := &flight{done: make(chan struct{}), started: make(chan struct{}), moved: make(chan struct{})}
	m.flights[d] = f
	m.mu.Unlock()
	if !m.goRun(func(ctx context.Context) { m.fetch(ctx, f, up, repo, d) }) {
		m.mu.Lock()
		delete(m.flights, d)
		m.mu.Unlock()
		f.err = errStopping
		close(f.done)
	}
	return f
}

func (m *Mirror) fetch(ctx context.Context, f *flight, up *upstream, repo string, d Digest) {
	defer func() {
		m.mu.Lock()
		delete(m.flights, d)
		m.mu.Unlock()
		close(f.done)
	}()
	stalled := map[identity.PeerID]bool{} // pending peers whose fetch did not move
	err := m.fromPeers(ctx, d, false, stalled)
	if err == nil {
		f.result = resultPeer
		return
	}
	if ctx.Err() != nil {
		f.err = errStopping
		return
	}
	// Nobody holds d or fetches it. Claim it: announce at once (answering
	// "pending") and look again, so that of several nodes missing d at the
	// same moment the one with the lowest PeerID goes to the upstream and
	// the others wait for it.
	f.claimed.Store(true)
	pctx, cancel := context.WithTimeout(ctx, m.cfg.LookupTimeout)
	if err := m.node.Provide(pctx, BlobKey(d)); err != nil {
		m.log.Debug("announcing a claimed blob", "content", d.String(), "err", err)
	}
	cancel()
	if err = m.fromPeers(ctx, d, true, stalled); err == nil {
		f.result = resultPeer
		return
	}
	m.log.Debug("blob not from peers", "content", d.String(), "err", err)
	if f.err = m.fromUpstream(ctx, f, up, repo, d); f.err == nil {
		f.result = resultUpstream
		return
	}
	if ctx.Err() != nil {
		f.err = errStopping
	}
	m.node.StopProviding(BlobKey(d))
}

// fromPeers looks for d in the DHT and fetches it from the peers that map
// it to shoal content, checking every candidate. It waits for a peer that
// is itself fetching d from the upstream (or has claimed it) while that
// fetch progresses. With claimed set (this node has claimed d too), it
// waits only for peers whose PeerID is lower than this node's. Peers whose
// fetch stalled are added to stalled, and not waited for again.
func (m *Mirror) fromPeers(ctx context.Context, d Digest, claimed bool, stalled map[identity.PeerID]bool) error {
	self := m.node.Self()
	var peers []Peer
	lookup := func() {
		lctx, cancel := context.WithTimeout(ctx, m.cfg.LookupTimeout)
		defer cancel()
		m.node.FindProviders(lctx, BlobKey(d), func(p Peer) {
			if p.ID == self || m.isBanned(p.ID) || len(peers) >= maxProviders {
				return
			}
			for _, q := range peers {
				if q.ID == p.ID {
					return
				}
			}
			peers = append(peers, p)
		})
	}
	lookup()
	lastLookup := time.Now()
	if len(peers) == 0 {
		return errNoPeers
	}
	tried := map[[32]byte]bool{}
	start := time.Now()
	mark, markTime := int64(-1), start // progress at the start of the window
	for {
		answers := m.askAll(ctx, peers, d)
		type candidate struct {
			size  int64
			peers []Peer
		}
		cands := map[[32]byte]*candidate{}
		var order [][32]byte
		var pending []Peer
		have, size := int64(0), int64(0)
		for i, a := range answers {
			switch {
			case a == nil:
			case a.status == statusReady && !tried[a.content]:
				c := cands[a.content]
				if c == nil {
					c = &candidate{size: a.size}
					cands[a.content] = c
					order = append(order, a.content)
				}
				if c.size == a.size {
					c.peers = append(c.peers, peers[i])
				}
			case a.status == statusPending && !stalled[peers[i].ID] && (!claimed || bytes.Compare(peers[i].ID[:], self[:]) < 0) &&
				a.size <= m.cfg.MaxBlobSize && (a.size == 0 || a.have <= a.size):
				pending = append(pending, peers[i])
				have, size = max(have, a.have), max(size, a.size)
			}
		}
		// Most-named content first.
		for i := 1; i < len(order); i++ {
			for j := i; j > 0 && len(cands[order[j]].peers) > len(cands[order[j-1]].peers); j-- {
				order[j], order[j-1] = order[j-1], order[j]
			}
		}
		for _, id := range order {
			c := cands[id]
			tried[id] = true
			err := m.fetchCandidate(ctx, d, id, c.size, c.peers)
			if err == nil {
				return nil
			}
			if errors.Is(err, errBadMapping) {
				m.penalise(c.peers, d, id)
			}
			m.log.Debug("blob from peers failed", "content", d.String(), "err", err)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		if len(pending) == 0 {
			return errNoPeers
		}
		// A peer is fetching d from the upstream, or has claimed it: wait
		// while the fetch moves, by at least waitMinRate over each
		// StallTimeout, and maxWait in all (progress reports cannot be
		// checked: a lying peer delays a blob by maxWait at most). The
		// peer we heard from may itself be waiting for another, so look
		// again now and then for the one that fetches, and for new
		// holders.
		now := time.Now()
		need := int64(m.cfg.StallTimeout.Seconds() * waitMinRate)
		if size > 0 {
			need = min(need, max(size-mark, 1))
		}
		if mark < 0 || have-mark >= need {
			mark, markTime = have, now
		} else if now.Sub(markTime) > m.cfg.StallTimeout || now.Sub(start) > maxWait {
			for _, p := range pending {
				stalled[p.ID] = true
			}
			return errStalled
		}
		if now.Sub(lastLookup) > time.Second {
			lookup()
			lastLookup = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// askAll asks every peer for its mapping of d at once; a failed ask is nil.
func (m *Mirror) askAll(ctx context.Context, peers []Peer, d Digest) []*answer {
	out := make([]*answer, len(peers))
	done := make(chan struct{}, len(peers))
	actx, cancel := context.WithTimeout(ctx, m.cfg.LookupTimeout)
	defer cancel()
	for i, p := range peers {
		go func() {
			defer func() { done <- struct{}{} }()
			if a, err := m.ask(actx, p, d); err == nil {
				out[i] = &a
			}
		}()
	}
	for range peers {
		<-done
	}
	return out
}

// ask asks p which content holds d.
func (m *Mirror) ask(ctx context.Context, p Peer, d Digest) (answer, error) {
	var lastErr error = errNoPeers
	for _, addr := range p.Addrs {
		s, err := m.node.OpenStream(ctx, p.ID, addr)
		if err != nil {
			lastErr = err
			continue
		}
		dl, _ := ctx.Deadline()
		s.SetDeadline(dl)
		stop := context.AfterFunc(ctx, s.Reset)
		_, err = s.Write(appendRequest(nil, d))
		if err == nil {
			err = s.Close()
		}
		var b []byte
		if err == nil {
			b, err = io.ReadAll(io.LimitReader(s, maxWireLen))
		}
		stop()
		if err != nil {
			s.Reset()
			return answer{}, err
		}
		return decodeAnswer(b)
	}
	return answer{}, lastErr
}

// fetchCandidate fetches content id, which peers say holds d, and checks
// it. errBadMapping means the content is not d.
func (m *Mirror) fetchCandidate(ctx context.Context, d Digest, id [32]byte, size int64, peers []Peer) error {
	if size > m.cfg.MaxBlobSize {
		return fmt.Errorf("registry: blob of %d bytes over the %d cap", size, m.cfg.MaxBlobSize)
	}
	m.mu.Lock()
	for od, e := range m.blobs {
		if e.Content == id && od != d {
			m.mu.Unlock()
			return fmt.Errorf("%w: the content is blob %s", errBadMapping, od)
		}
	}
	m.mu.Unlock()
	dir, err := os.MkdirTemp(filepath.Join(m.cfg.Dir, "peer"), hex.EncodeToString(d[:8])+"-")
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var lastDone atomic.Int64
	var lastMove atomic.Int64
	lastMove.Store(time.Now().UnixNano())
	progress := func(done, total int64) {
		if total != 0 && total != size {
			cancel(fmt.Errorf("%w: content of %d bytes, blob of %d", errBadMapping, total, size))
		}
		if done > lastDone.Load() {
			lastDone.Store(done)
			lastMove.Store(time.Now().UnixNano())
		}
	}
	watchDone := make(chan struct{})
	stopWatch := make(chan struct{})
	go func() {
		defer close(watchDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopWatch:
				return
			case <-fctx.Done():
				return
			case <-t.C:
				if time.Since(time.Unix(0, lastMove.Load())) > m.cfg.StallTimeout {
					cancel(errStalled)
					return
				}
			}
		}
	}()
	fe, err := m.node.Fetch(fctx, id, peers, dir, progress)
	close(stopWatch)
	<-watchDone
	if err != nil {
		if c := context.Cause(fctx); c != nil && ctx.Err() == nil {
			err = c
		}
		m.node.Forget(id)
		os.RemoveAll(dir)
		return err
	}
	bad := func(why string) error {
		if fe.New {
			m.node.Forget(id)
		}
		os.RemoveAll(dir)
		return fmt.Errorf("%w: %s", errBadMapping, why)
	}
	if fe.Size != size {
		return bad(fmt.Sprintf("content of %d bytes, blob of %d", fe.Size, size))
	}
	got, err := hashFile(fe.Path)
	if err != nil {
		if fe.New {
			m.node.Forget(id)
		}
		os.RemoveAll(dir)
		return err
	}
	if got != d {
		return bad("content hashes to " + got.String())
	}
	if fe.New {
		m.m.peerBytes.Add(float64(fe.Size))
	} else {
		os.RemoveAll(dir)
	}
	if err := m.addBlob(d, blobEntry{Content: id, Path: fe.Path, Size: fe.Size}); err != nil {
		return err
	}
	m.provide(d)
	return nil
}

func (m *Mirror) isBanned(p [32]byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	until, ok := m.banned[p]
	if ok && time.Now().After(until) {
		delete(m.banned, p)
		return false
	}
	return ok
}

// penalise ignores the mappings of peers that named id for d for BanFor.
func (m *Mirror) penalise(peers []Peer, d Digest, id [32]byte) {
	until := time.Now().Add(m.cfg.BanFor)
	m.mu.Lock()
	for _, p := range peers {
		m.banned[p.ID] = until
	}
	m.mu.Unlock()
	for _, p := range peers {
		m.m.badMappings.Inc()
		m.penalised.Add(1)
		m.log.Warn("peer mapped a blob to other content; ignoring its mappings", "peer", p.ID.String(), "content", d.String(), "err", hex.EncodeToString(id[:]))
	}
}

// fromUpstream fetches d from the upstream, announcing it as soon as the
// upstream answers, and publishes it once verified.
func (m *Mirror) fromUpstream(ctx context.Context, f *flight, up *upstream, repo string, d Digest) error {
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := up.get(hctx, repo, "blobs/"+d.String(), "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.ContentLength > m.cfg.MaxBlobSize {
		return &upstreamError{http.StatusBadGateway, codeUnknown, fmt.Sprintf("upstream blob of %d bytes, over the mirror's cap of %d", resp.ContentLength, m.cfg.MaxBlobSize)}
	}
	f.size.Store(max(resp.ContentLength, 0))
	f.upstream.Store(true)
	ok := false
	tmp, err := os.CreateTemp(filepath.Join(m.cfg.Dir, "tmp"), "blob-")
	if err != nil {
		return err
	}
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	f.tmp = tmp.Name()
	close(f.started)
	n, err := copyCounting(tmp, h, io.LimitReader(resp.Body, m.cfg.MaxBlobSize+1), func(k int) {
		f.have.Add(int64(k))
		m.m.upstreamBytes.Add(float64(k))
		f.wake()
	})
	if err != nil {
		if ctx.Err() != nil {
			return errStopping
		}
		return &upstreamError{http.StatusBadGateway, codeUnavailable, fmt.Sprintf("upstream %s: reading blob: %v", up.base, err)}
	}
	var got Digest
	h.Sum(got[:0])
	if got != d || (resp.ContentLength >= 0 && n != resp.ContentLength) || n > m.cfg.MaxBlobSize {
		return &upstreamError{http.StatusBadGateway, codeDigestInvalid, fmt.Sprintf("upstream %s sent %d bytes hashing to %s for %s; not served", up.base, n, got, d)}
	}
	f.verified.Store(true)
	f.wake()
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	final := filepath.Join(m.cfg.Dir, "blobs", "sha256-"+hex.EncodeToString(d[:]))
	if err := os.Rename(tmp.Name(), final); err != nil {
		return err
	}
	ok = true
	id, err := m.node.Publish(ctx, final)
	if err != nil {
		os.Remove(final)
		return fmt.Errorf("registry: publishing blob: %w", err)
	}
	return m.addBlob(d, blobEntry{Content: id, Path: final, Size: n})
}

// copyCounting copies src to dst and h, reporting each piece.
func copyCounting(dst io.Writer, h hash.Hash, src io.Reader, got func(int)) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return n, werr
			}
			h.Write(buf[:k])
			n += int64(k)
			got(k)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func hashFile(path string) (Digest, error) {
	var d Digest
	f, err := os.Open(path)
	if err != nil {
		return d, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return d, err
	}
	h.Sum(d[:0])
	return d, nil
}

// The index: one small JSON file per held blob, index/<hex>.

func (m *Mirror) addBlob(d Digest, e blobEntry) error {
	e.ID = hex.EncodeToString(e.Content[:])
	b, _ := json.Marshal(e)
	name := filepath.Join(m.cfg.Dir, "index", hex.EncodeToString(d[:]))
	if err := os.WriteFile(name+".tmp", b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(name+".tmp", name); err != nil {
		return err
	}
	m.mu.Lock()
	m.blobs[d] = e
	m.mu.Unlock()
	return nil
}

func (m *Mirror) dropBlob(d Digest) {
	m.mu.Lock()
	delete(m.blobs, d)
	m.mu.Unlock()
	os.Remove(filepath.Join(m.cfg.Dir, "index", hex.EncodeToString(d[:])))
	m.node.StopProviding(BlobKey(d))
}

func (m *Mirror) loadIndex() error {
	dir := filepath.Join(m.cfg.Dir, "index")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	for _, de := range ents {
		var d Digest
		if n, err := hex.Decode(d[:], []byte(de.Name())); err != nil || n != 32 || strings.HasSuffix(de.Name(), ".tmp") {
			os.Remove(filepath.Join(dir, de.Name()))
			continue
		}
		var e blobEntry
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err == nil {
			err = json.Unmarshal(b, &e)
		}
		if err == nil {
			var k int
			k, err = hex.Decode(e.Content[:], []byte(e.ID))
			if err == nil && k != 32 {
				err = errors.New("bad content ID")
			}
		}
		if err == nil {
			var st os.FileInfo
			if st, err = os.Stat(e.Path); err == nil && st.Size() != e.Size {
				err = errors.New("size changed")
			}
		}
		if err != nil {
			m.log.Warn("dropping registry index entry", "content", de.Name(), "err", err)
			os.Remove(filepath.Join(dir, de.Name()))
			continue
		}
		m.blobs[d] = e
	}
	return nil
}
