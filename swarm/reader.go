package swarm

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/swarm/sched"
)

// DefaultReadAhead is a reader's read-ahead when NewReader is given 0.
const DefaultReadAhead = 8 << 20

// Reader reads a byte range of a download's content while the download
// runs: a Read of bytes not yet verified focuses the scheduler on their
// stripe (urgent: requests elsewhere make room) and on the read-ahead
// behind it, then blocks until the chunk is verified, or its stripe can be
// decoded from any d_s verified chunks. It never returns a byte that was not
// checked against its Merkle leaf. Close releases the reader's focus and
// wakes a blocked Read (from any goroutine). A Reader holds one chunk buffer.
type Reader struct {
	d         *Download
	dl        *chunker.Download
	m         *chunker.Manifest
	pos, end  int64
	readAhead int64

	buf      []byte // the chunk bufAt, verified
	bufAt    int    // chunk index in buf; -1: none
	curStrip int    // stripe of the window's start; -1: none

	// Guarded by d.steer.mu.
	window  []sched.Want // data chunks: the current stripe's, then read-ahead
	blocked bool

	closeOnce sync.Once
	closed    chan struct{}
}

// ErrRange: a reader's range lies outside the content.
var ErrRange = errors.New("swarm: range outside the content")

// NewReader returns a reader of content bytes [off, off+n) of d. The
// manifest must be known (call Manifest first). readAhead is how many bytes
// past the read position the reader asks for ahead of time (0: default
// DefaultReadAhead; it is rounded up to whole stripes).
func (d *Download) NewReader(off, n, readAhead int64) (*Reader, error) {
	dl := d.Chunker()
	if dl == nil {
		return nil, fmt.Errorf("download %s: reader before the manifest is known", d.id)
	}
	m := dl.Manifest()
	if off < 0 || n < 0 || off+n > m.Size || off+n < off {
		return nil, fmt.Errorf("%w: %d+%d of %d bytes", ErrRange, off, n, m.Size)
	}
	if readAhead <= 0 {
		readAhead = DefaultReadAhead
	}
	r := &Reader{d: d, dl: dl, m: m, pos: off, end: off + n, readAhead: readAhead, bufAt: -1, curStrip: -1, closed: make(chan struct{})}
	d.steer.mu.Lock()
	if d.steer.readers == nil {
		d.steer.readers = map[*Reader]struct{}{}
	}
	d.steer.readers[r] = struct{}{}
	d.steer.mu.Unlock()
	r.moveWindow()
	return r, nil
}

// Close releases the reader's focus. It is idempotent and wakes a blocked
// Read, which then returns ErrClosed.
func (r *Reader) Close() error {
	r.closeOnce.Do(func() {
		close(r.closed)
		st := &r.d.steer
		st.mu.Lock()
		delete(st.readers, r)
		st.dirty = true
		st.mu.Unlock()
		r.d.signal()
	})
	return nil
}

// Read reads the next bytes of the range, waiting for them to be verified.
func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.end {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	cs := int64(r.m.ChunkSize)
	g := int(r.pos / cs)
	c := r.m.ChunkOfData(g)
	if r.bufAt != c {
		if err := r.load(c); err != nil {
			return 0, err
		}
	}
	lo := int(r.pos - int64(g)*cs)
	n := copy(p, r.buf[lo:min(len(r.buf), lo+int(r.end-r.pos))])
	r.pos += int64(n)
	if r.pos < r.end && r.pos%cs == 0 {
		r.moveWindow()
	}
	return n, nil
}

// load waits until data chunk c can be read, then reads it (verified).
func (r *Reader) load(c int) error {
	s, _ := r.m.StripeOf(c)
	for {
		select {
		case <-r.closed:
			return ErrClosed
		default:
		}
		ch := r.d.steer.watch()
		if r.dl.HasChunk(c) || r.dl.StripeDecodable(s) {
			b, err := r.dl.ReadChunk(c, r.buf[:0])
			if err != nil {
				return fmt.Errorf("download %s: %w", r.d.id, err)
			}
			r.buf, r.bufAt = b, c
			r.setBlocked(false)
			return nil
		}
		if err := r.d.runEnded(); err != nil {
			return fmt.Errorf("download %s: chunk %d: %w", r.d.id, c, err)
		}
		r.setBlocked(true)
		select {
		case <-ch:
		case <-r.closed:
			return ErrClosed
		}
	}
}

// moveWindow focuses the data chunks from the read position to the
// read-ahead, as runs per stripe, when the read position enters a stripe.
func (r *Reader) moveWindow() {
	cs := int64(r.m.ChunkSize)
	g0 := int(r.pos / cs)
	first, _ := r.m.StripeOf(r.m.ChunkOfData(g0))
	if first == r.curStrip {
		return
	}
	r.curStrip = first
	g1 := int((max(min(r.end, r.pos+r.readAhead), r.pos+1) - 1) / cs)
	var w []sched.Want
	for g := g0; g <= g1; g++ {
		c := r.m.ChunkOfData(g)
		if n := len(w); n > 0 && w[n-1].Last == c-1 {
			w[n-1].Last = c
			continue
		}
		w = append(w, sched.Want{First: c, Last: c})
	}
	st := &r.d.steer
	st.mu.Lock()
	r.window = w
	st.dirty = true
	st.mu.Unlock()
	r.d.signal()
}

func (r *Reader) setBlocked(b bool) {
	st := &r.d.steer
	st.mu.Lock()
	changed := r.blocked != b
	r.blocked = b
	st.dirty = st.dirty || changed
	st.mu.Unlock()
	if changed {
		r.d.signal()
	}
}

// Readers returns the number of open readers of d.
func (d *Download) Readers() int {
	d.steer.mu.Lock()
	defer d.steer.mu.Unlock()
	return len(d.steer.readers)
}
