//go:build !linux

package overlay

import (
	"log/slog"
	"net"
)

// tuneBuffers asks for want-byte socket buffers; quic-go checks and warns
// on its own on these systems.
func tuneBuffers(c *net.UDPConn, want int, log *slog.Logger) {
	if err := c.SetReadBuffer(want); err != nil {
		log.Warn("overlay UDP receive buffer not raised", "want", want, "err", err)
	}
	if err := c.SetWriteBuffer(want); err != nil {
		log.Warn("overlay UDP send buffer not raised", "want", want, "err", err)
	}
}
