//go:build linux

package drill

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Capture watches every packet a host's interfaces carry (an AF_PACKET
// socket opened inside its namespace) for pieces of a plaintext: 8-byte
// windows taken every 512 bytes of it. A packet carrying 512 or more
// contiguous bytes of the plaintext contains at least one.
type Capture struct {
	fd      int
	samples map[uint64]struct{}
	stop    atomic.Bool
	wg      sync.WaitGroup
	packets atomic.Int64
	bytes   atomic.Int64
	hits    atomic.Int64
}

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
	unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	c.wg.Add(1)
	go c.loop()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) loop() {
	defer c.wg.Done()
	buf := make([]byte, 65536)
	for !c.stop.Load() {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil || n <= 0 {
			continue
		}
		c.packets.Add(1)
		c.bytes.Add(int64(n))
		b := buf[:n]
		for i := 0; i+8 <= len(b); i++ {
			if _, ok := c.samples[binary.LittleEndian.Uint64(b[i:])]; ok {
				c.hits.Add(1)
			}
		}
	}
}

// Stop ends the capture and returns the packets and bytes seen and how
// many plaintext pieces they carried.
func (c *Capture) Stop() (packets, bytes, hits int64) {
	if c.stop.CompareAndSwap(false, true) {
		c.wg.Wait()
		unix.Close(c.fd)
	}
	return c.packets.Load(), c.bytes.Load(), c.hits.Load()
}
