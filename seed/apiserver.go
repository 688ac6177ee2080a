package seed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Budgets of the control API. Anyone who can reach the loopback port can
// open connections without the token, so they are capped: at most
// apiMaxConns at once on each listener (the Unix socket, which only the
// node's user can reach, has a cap of its own, so a TCP flood never closes
// the CLI's connection); when a new one arrives at its listener's cap, the
// oldest connection of that listener that is idle or has not yet sent a
// request is closed (busy ones are never dropped for a newcomer). Idle keep-alive
// connections close after apiIdleTimeout; a request's headers and body
// must arrive within apiReadTimeout.
const (
	apiMaxConns       = 64
	apiIdleTimeout    = 30 * time.Second
	apiReadTimeout    = 10 * time.Second
	apiWriteTimeout   = 30 * time.Second // plain answers; streams push it forward per line
	apiShutdownBudget = 2 * time.Second
)

// connCap tracks the API's connections and enforces apiMaxConns per
// listener kind (Unix socket or TCP).
type connCap struct {
	max int

	mu    sync.Mutex
	conns map[net.Conn]connEntry
	seq   uint64
}

type connEntry struct {
	state http.ConnState
	seq   uint64 // arrival order
	unix  bool   // came through the Unix socket
}

func isUnix(conn net.Conn) bool { return conn.LocalAddr().Network() == "unix" }

func newConnCap(max int) *connCap { return &connCap{max: max, conns: map[net.Conn]connEntry{}} }

// track is the server's ConnState hook.
func (c *connCap) track(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case http.StateNew:
		c.seq++
		u := isUnix(conn)
		c.conns[conn] = connEntry{state: st, seq: c.seq, unix: u}
		for c.countLocked(u) > c.max {
			if !c.evictLocked(conn, u) {
				break
			}
		}
	case http.StateClosed, http.StateHijacked:
		delete(c.conns, conn)
	default:
		e := c.conns[conn]
		e.state = st
		c.conns[conn] = e
	}
}

// evictLocked closes the oldest idle or new connection of the same kind
// (unix) other than keep. With none to close, it closes keep itself: the
// newcomer waits its turn by trying again.
func (c *connCap) evictLocked(keep net.Conn, unix bool) bool {
	var victim net.Conn
	var best uint64
	for conn, e := range c.conns {
		if conn == keep || e.unix != unix || e.state == http.StateActive {
			continue
		}
		if victim == nil || e.seq < best {
			victim, best = conn, e.seq
		}
	}
	if victim == nil {
		victim = keep
	}
	victim.Close()
	delete(c.conns, victim)
	return victim != keep
}

// count returns the connections held on the Unix socket (unix) or TCP.
func (c *connCap) count(unix bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.countLocked(unix)
}

func (c *connCap) countLocked(unix bool) int {
	n := 0
	for _, e := range c.conns {
		if e.unix == unix {
			n++
		}
	}
	return n
}

// startAPI serves the control API on the Unix socket in the data folder and,
// unless Config.API is "off", on its loopback TCP address.
func (n *Node) startAPI() error {
	tok, err := loadOrCreateToken(filepath.Join(n.cfg.DataDir, tokenFileName))
	if err != nil {
		return err
	}
	var lns []net.Listener
	fail := func(err error) error {
		for _, ln := range lns {
			ln.Close()
		}
		return err
	}
	sock := filepath.Join(n.cfg.DataDir, socketFileName)
	os.Remove(sock) // a dead node's; the data folder lock says no node runs
	uln, err := listenUnix(n.cfg.DataDir, sock)
	if err != nil {
		return fail(fmt.Errorf("control socket %s: %w", sock, err))
	}
	lns = append(lns, uln)
	os.Chmod(sock, 0o600) // the folder is the owner's; so is the socket
	if n.cfg.API != "off" {
		ln, err := net.Listen("tcp", n.cfg.API)
		if err != nil {
			return fail(fmt.Errorf("control API on %s: %w (is another node running? set --api to another port, or off)", n.cfg.API, err))
		}
		n.apiAddr = ln.Addr().String()
		lns = append(lns, ln)
	}
	n.apiConns = newConnCap(apiMaxConns)
	n.api = &http.Server{
		Handler:           newAPIHandler(n, tok),
		ReadHeaderTimeout: apiReadTimeout,
		ReadTimeout:       apiReadTimeout,
		WriteTimeout:      apiWriteTimeout,
		IdleTimeout:       apiIdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ConnState:         n.apiConns.track,
		ConnContext:       withUnixMark,
		BaseContext:       func(net.Listener) context.Context { return n.ctx },
	}
	b, _ := json.Marshal(apiFile{Addr: n.apiAddr, Socket: sock, PID: os.Getpid()})
	if err := writeFileAtomic(filepath.Join(n.cfg.DataDir, apiFileName), b, 0o600); err != nil {
		return fail(err)
	}
	n.apiLns = lns
	for _, ln := range lns {
		n.goRun(func(context.Context) {
			if err := n.api.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.log.Warn("control API stopped", "err", err)
			}
		})
	}
	return nil
}

// listenUnix listens on sock, reaching a path too long for sun_path
// through /proc/self/fd of a descriptor on its folder.
func listenUnix(dir, sock string) (net.Listener, error) {
	if len(sock) <= 100 {
		return net.Listen("unix", sock)
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	ln, err := net.Listen("unix", fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), socketFileName))
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // the name above dies with d
	return ln, nil
}

// stopAPI stops the control API and removes its files.
func (n *Node) stopAPI() {
	if n.api == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiShutdownBudget)
	n.api.Shutdown(ctx)
	cancel()
	n.api.Close()
	os.Remove(filepath.Join(n.cfg.DataDir, apiFileName))
	os.Remove(filepath.Join(n.cfg.DataDir, socketFileName))
}
