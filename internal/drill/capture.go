//go:build linux

package drill

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Capture records every packet a host's interfaces carry (an AF_PACKET
// socket opened inside its namespace, up to maxCapture bytes) and, at
// Stop, looks in them for pieces of a plaintext: 8-byte windows taken
// every 512 bytes of it. A packet carrying 512 or more contiguous bytes of
// the plaintext contains at least one. Recording only while capturing
// keeps up with the link; the kernel still drops packets when the socket's
// buffer overflows, which Stop reports (seen against the interface's own
// count is the caller's to compare).
type Capture struct {
	fd      int
	samples map[uint64]struct{}
	stop    atomic.Bool
	wg      sync.WaitGroup
	packets int64
	rec     []byte // the packets, back to back
	full    bool   // maxCapture reached
	drops   int64  // packets the kernel dropped (socket buffer full), from PACKET_STATISTICS
}

// Drops returns how many packets the kernel dropped for want of room in
// the capture's socket buffer (known after Stop).
func (c *Capture) Drops() int64 { return c.drops }

const maxCapture = 512 << 20

// StartCapture starts watching h for pieces of plaintext. Stop ends it.
func StartCapture(h *Host, plaintext []byte) (*Capture, error) {
	c := &Capture{samples: map[uint64]struct{}{}}
	for off := 0; off+8 <= len(plaintext); off += 512 {
		c.samples[binary.LittleEndian.Uint64(plaintext[off:])] = struct{}{}
	}
	err := inNS(h.NS, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("packet socket in %s: %w", h.NS, err)
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 256<<20) != nil {
		unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	}
	c.wg.Add(1)
	go c.loop()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) loop() {
	defer c.wg.Done()
	// On a loaded machine a starved reader lets the socket's buffer
	// overflow: this thread runs at a higher priority (its own, nothing
	// system-wide) and is handed back at the usual priority. It must not
	// end locked: Go would end the thread, and the kernel kills the node
	// processes that thread started (Pdeathsig).
	runtime.LockOSThread()
	tid := unix.Gettid()
	unix.Setpriority(unix.PRIO_PROCESS, tid, -15)
	defer func() {
		unix.Setpriority(unix.PRIO_PROCESS, tid, 0)
		runtime.UnlockOSThread()
	}()
	buf := make([]byte, 65536)
	for !c.stop.Load() {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err == nil && n > 0 {
			c.record(buf[:n])
		}
	}
	// Stop may come before this thread got the CPU (a loaded machine):
	// what the kernel queued meanwhile was captured too, so read it.
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, unix.MSG_DONTWAIT)
		if err != nil || n <= 0 {
			return
		}
		c.record(buf[:n])
	}
}

func (c *Capture) record(p []byte) {
	c.packets++
	if len(c.rec)+len(p) > maxCapture {
		c.full = true
		return
	}
	c.rec = append(c.rec, p...)
}

// Stop ends the capture and returns the packets and bytes recorded and how
// many plaintext pieces they carried.
func (c *Capture) Stop() (packets, bytes, hits int64) {
	if c.stop.CompareAndSwap(false, true) {
		c.wg.Wait()
		if st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			c.drops = int64(st.Drops)
		}
		unix.Close(c.fd)
	}
	for i := 0; i+8 <= len(c.rec); i++ {
		if _, ok := c.samples[binary.LittleEndian.Uint64(c.rec[i:])]; ok {
			hits++
		}
	}
	return c.packets, int64(len(c.rec)), hits
}
