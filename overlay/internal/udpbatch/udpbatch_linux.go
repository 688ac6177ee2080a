package udpbatch

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	maxSegments   = 64    // the kernel's UDP_MAX_SEGMENTS is 64 or more
	maxBatchBytes = 65000 // one IP datagram: 64 KiB less headers
	maxBatches    = 16    // queued or being sent, over all destinations
	maxPerDest    = 3     // queued for one destination
	readBufSize   = 1 << 16
	closeTimeout  = time.Second // Close waits this long for queued batches
	maxErrors     = 1024        // unreported send errors kept
)

// Conn is a UDP socket with batched writes and reads. It implements
// net.PacketConn plus SyscallConn, SetReadBuffer and SetWriteBuffer (so
// quic-go can size its buffers and set the don't-fragment bit), and
// deliberately not ReadMsgUDP/WriteMsgUDP, which would make quic-go bypass
// the batching.
type Conn struct {
	udp *net.UDPConn

	rmu  sync.Mutex // guards the read side
	rbuf []byte
	roob []byte
	rest []byte // segments read but not yet returned
	rseg int    // their size
	from *net.UDPAddr

	wmu     sync.Mutex // guards the write side below
	wcond   *sync.Cond // signalled when a batch is sent or the conn closes
	queue   []*batch   // batches waiting for the flusher
	batches int        // batches queued or being sent
	closed  bool
	lastErr map[netip.AddrPort]error // hard send errors not yet reported
	kick    chan struct{}            // wakes the flusher
	done    chan struct{}            // closed when the flusher returns
	gso     atomic.Bool              // segmentation offload works

	closeOnce sync.Once
	closeErr  error

	sends, sent, reads, coalesced atomic.Uint64
}

// Stats counts the Conn's system calls and packets.
type Stats struct {
	Sends     uint64 // sendmsg calls
	Sent      uint64 // packets they carried
	Reads     uint64 // recvmsg calls that returned data
	Coalesced uint64 // of those, reads that returned more than one datagram
}

// Stats returns the counters so far.
func (c *Conn) Stats() Stats {
	return Stats{Sends: c.sends.Load(), Sent: c.sent.Load(), Reads: c.reads.Load(), Coalesced: c.coalesced.Load()}
}

type batch struct {
	buf   []byte
	seg   int // segment size: the first packet's length
	n     int // packets
	to    netip.AddrPort
	ended bool // a shorter packet ended it
}

var batchPool = sync.Pool{New: func() any { return &batch{buf: make([]byte, 0, maxBatchBytes)} }}

// New wraps c, which the returned Conn owns: closing the Conn closes c.
func New(c *net.UDPConn) net.PacketConn {
	b := &Conn{
		udp:     c,
		rbuf:    make([]byte, readBufSize),
		roob:    make([]byte, 64),
		lastErr: make(map[netip.AddrPort]error),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	b.gso.Store(true)
	b.wcond = sync.NewCond(&b.wmu)
	if raw, err := c.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1)
		})
	}
	go b.flusher()
	return b
}

// ReadFrom returns the next datagram, reading a new (possibly coalesced)
// buffer from the socket when the last one is used up. A datagram longer
// than p is truncated, as with a plain socket.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.rest) == 0 {
		n, oobn, flags, from, err := c.udp.ReadMsgUDP(c.rbuf, c.roob)
		if err != nil {
			return 0, nil, err
		}
		seg := n
		if s := groSegment(c.roob[:oobn]); s > 0 && s < n {
			seg = s
		}
		if flags&unix.MSG_TRUNC != 0 && seg < n {
			n -= n % seg // keep the whole segments
		}
		c.from = from
		c.reads.Add(1)
		if seg < n {
			c.coalesced.Add(1)
		}
		if n == 0 {
			return 0, from, nil // an empty datagram
		}
		c.rest, c.rseg = c.rbuf[:n], seg
	}
	k := min(c.rseg, len(c.rest))
	n := copy(p, c.rest[:k])
	c.rest = c.rest[k:]
	return n, c.from, nil
}

// groSegment returns the segment size from a UDP_GRO control message, or 0.
func groSegment(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_UDP && m.Header.Type == unix.UDP_GRO && len(m.Data) >= 4 {
			return int(int32(binary.NativeEndian.Uint32(m.Data)))
		}
	}
	return 0
}

// WriteTo queues p for addr and returns len(p), or the last hard error a
// send to addr met since the previous call.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: syscall.EINVAL}
	}
	to := ua.AddrPort()
	if len(p) > maxBatchBytes {
		return c.udp.WriteToUDPAddrPort(p, to) // too big to batch; the kernel decides
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.lastErr[to]; err != nil {
		delete(c.lastErr, to)
		return 0, err
	}
	for {
		if c.closed {
			return 0, net.ErrClosed
		}
		// Append to the last queued batch for to, if p fits; packets to
		// other destinations may sit in between (one batch each).
		var last *batch
		queued := 0
		for _, b := range c.queue {
			if b.to == to {
				last, queued = b, queued+1
			}
		}
		if last == nil || !last.fits(p) {
			if queued >= maxPerDest || c.batches >= maxBatches {
				c.wcond.Wait()
				continue
			}
			last = batchPool.Get().(*batch)
			last.buf, last.seg, last.n, last.to, last.ended = last.buf[:0], len(p), 0, to, false
			c.queue = append(c.queue, last)
			c.batches++
		}
		last.buf = append(last.buf, p...)
		last.n++
		if len(p) < last.seg {
			last.ended = true
		}
		select {
		case c.kick <- struct{}{}:
		default:
		}
		return len(p), nil
	}
}

// fits reports whether p can go at the end of b.
func (b *batch) fits(p []byte) bool {
	return !b.ended && len(p) <= b.seg && (len(p) == 0) == (b.seg == 0) &&
		b.n < maxSegments && len(b.buf)+len(p) <= maxBatchBytes
}

func (c *Conn) flusher() {
	defer close(c.done)
	var taken []*batch
	oob := make([]byte, unix.CmsgSpace(2))
	for {
		c.wmu.Lock()
		for len(c.queue) == 0 && !c.closed {
			c.wmu.Unlock()
			<-c.kick
			c.wmu.Lock()
		}
		if len(c.queue) == 0 { // closed and drained
			c.wmu.Unlock()
			return
		}
		taken = append(taken[:0], c.queue...)
		clear(c.queue)
		c.queue = c.queue[:0]
		c.wmu.Unlock()
		for _, b := range taken {
			err := c.send(b, oob)
			c.wmu.Lock()
			if err != nil && hardError(err) {
				if len(c.lastErr) >= maxErrors { // destinations never written to again
					clear(c.lastErr)
				}
				c.lastErr[b.to] = err
			}
			c.batches--
			c.wcond.Broadcast()
			c.wmu.Unlock()
			batchPool.Put(b)
		}
		clear(taken)
	}
}

// send sends one batch; only the flusher calls it.
func (c *Conn) send(b *batch, oob []byte) error {
	if b.n == 1 || b.seg == 0 || !c.gso.Load() {
		return c.sendEach(b)
	}
	c.sends.Add(1)
	c.sent.Add(uint64(b.n))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(b.seg))
	_, _, err := c.udp.WriteMsgUDPAddrPort(b.buf, oob, b.to)
	if err != nil && (errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL)) {
		c.gso.Store(false) // no offload on this path: send one by one from now on
		return c.sendEach(b)
	}
	return err
}

func (c *Conn) sendEach(b *batch) error {
	var first error
	if b.seg == 0 { // empty datagrams
		for range b.n {
			c.sends.Add(1)
			c.sent.Add(1)
			if _, err := c.udp.WriteToUDPAddrPort(nil, b.to); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for off := 0; off < len(b.buf); off += b.seg {
		p := b.buf[off:min(off+b.seg, len(b.buf))]
		c.sends.Add(1)
		c.sent.Add(1)
		if _, err := c.udp.WriteToUDPAddrPort(p, b.to); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// hardError reports whether a send error should reach the caller: not a
// momentary shortage nor an oversized path-MTU probe.
func hardError(err error) bool {
	return !errors.Is(err, unix.EMSGSIZE) && !errors.Is(err, unix.ENOBUFS) &&
		!errors.Is(err, unix.EAGAIN) && !errors.Is(err, net.ErrClosed) &&
		!errors.Is(err, unix.ECONNREFUSED)
}

// Close sends what is queued (waiting at most a second) and closes the
// socket. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.wmu.Lock()
		c.closed = true
		c.wcond.Broadcast()
		c.wmu.Unlock()
		select {
		case c.kick <- struct{}{}:
		default:
		}
		c.udp.SetWriteDeadline(time.Now().Add(closeTimeout))
		<-c.done
		c.closeErr = c.udp.Close()
	})
	return c.closeErr
}

func (c *Conn) LocalAddr() net.Addr                   { return c.udp.LocalAddr() }
func (c *Conn) SetDeadline(t time.Time) error         { return c.udp.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error     { return c.udp.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error    { return c.udp.SetWriteDeadline(t) }
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.udp.SyscallConn() }
func (c *Conn) SetReadBuffer(bytes int) error         { return c.udp.SetReadBuffer(bytes) }
func (c *Conn) SetWriteBuffer(bytes int) error        { return c.udp.SetWriteBuffer(bytes) }
