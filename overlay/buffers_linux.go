package overlay

import (
	"log/slog"
	"net"
	"os"
	"syscall"
)

// tuneBuffers raises the socket's receive and send buffers to want bytes,
// forcing past net.core.rmem_max/wmem_max when privileged. When the OS
// refuses, it logs one line naming the sysctl that fixes it and silences
// quic-go's own warning (printed through the standard log package), which
// would say the same less helpfully.
func tuneBuffers(c *net.UDPConn, want int, log *slog.Logger) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	get := func(opt int) int {
		var v int
		raw.Control(func(fd uintptr) { v, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt) })
		return v / 2 // Linux reports double the requested size
	}
	set := func(opt, force int) {
		raw.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, want)
			if got, _ := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt); got/2 < want {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, force, want)
			}
		})
	}
	set(syscall.SO_RCVBUF, syscall.SO_RCVBUFFORCE)
	set(syscall.SO_SNDBUF, syscall.SO_SNDBUFFORCE)
	rcv, snd := get(syscall.SO_RCVBUF), get(syscall.SO_SNDBUF)
	if rcv >= want && snd >= want {
		log.Debug("overlay UDP buffers", "recv", rcv, "send", snd)
		return
	}
	log.Warn("overlay UDP buffers smaller than wanted, throughput will suffer; fix with: sysctl -w net.core.rmem_max=N net.core.wmem_max=N",
		"recv", rcv, "send", snd, "want", want, "N", want)
	if os.Getenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING") == "" {
		os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	}
}
