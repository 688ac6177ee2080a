package seed

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestAPIIdleConnectionsCapped (issue 12 item 9): hundreds of connections
// that never send a request (no token needed to open one) neither exhaust
// the node's descriptors nor lock the CLI out: the API still answers.
func TestAPIIdleConnectionsCapped(t *testing.T) {
	n := startNode(t)
	const idle = 400
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range idle {
		c, err := net.Dial("tcp", n.APIAddr())
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	// Each connection is accepted in turn; the cap closes the oldest idle
	// ones, so the server never holds more than apiMaxConns.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, n.cfg.DataDir)
	if err != nil {
		t.Fatalf("Dial while %d idle connections are open: %v", idle, err)
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("Status while %d idle connections are open: %v", idle, err)
	}
	tcp := DialTCP(n.APIAddr(), mustToken(t, n))
	if _, err := tcp.Status(ctx); err != nil {
		t.Fatalf("TCP Status while %d idle connections are open: %v", idle, err)
	}
	if got := n.apiConns.count(false); got > apiMaxConns {
		t.Fatalf("the API holds %d TCP connections, cap %d", got, apiMaxConns)
	}
	// The test holds the client end of each connection itself.
	if fds := openFDs(t); fds >= 0 && fds-idle > 100+apiMaxConns {
		t.Fatalf("%d descriptors open beside the %d client ends: the server holds more than its cap", fds-idle, idle)
	}
}

func mustToken(t *testing.T, n *Node) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, tokenFileName))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// openFDs counts this process's open descriptors (-1 where /proc is
// missing). The test process holds both ends of each connection, so the
// count includes the client side; the check above allows for it.
func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// TestStaleAPIFileNeverGetsToken (issue 12 item 10): api.json survives a
// kill -9; another local process listening at its address must never
// receive the token. The CLI goes through the Unix socket in the data
// folder only.
func TestStaleAPIFileNeverGetsToken(t *testing.T) {
	dir := t.TempDir()
	n, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0", API: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	// A stranger listens where a dead node's api.json points, and that
	// file (and the token) stay behind as after a kill -9.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var got atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			got.Add(1)
			c.Close()
		}
	}()
	b, _ := json.Marshal(apiFile{Addr: ln.Addr().String(), PID: 1})
	if err := os.WriteFile(filepath.Join(dir, apiFileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, tokenFileName), []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Dial(ctx, dir); !errors.Is(err, ErrNoNode) {
		t.Fatalf("Dial with a stale api.json: %v, want ErrNoNode", err)
	}
	// A socket-shaped stranger: a plain file named api.sock.
	os.WriteFile(filepath.Join(dir, socketFileName), nil, 0o600)
	if _, err := Dial(ctx, dir); !errors.Is(err, ErrNoNode) {
		t.Fatalf("Dial with a file at api.sock: %v, want ErrNoNode", err)
	}
	if got.Load() != 0 {
		t.Fatalf("the stale address received %d connections", got.Load())
	}
}

// TestErrorsCrossTheAPI: every sentinel comes back from a Client as
// itself (errors.Is), with its message, so the CLI cannot tell a remote
// node from a local one.
func TestErrorsCrossTheAPI(t *testing.T) {
	n := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, n.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, api := range []API{n, c} {
		_, err := api.Get(ctx, GetRequest{Link: "shoal:abc", Out: t.TempDir()}, nil)
		if !errors.Is(err, ErrBadLink) || Code(err) != CodeBadLink || strings.Count(err.Error(), "bad link") != 1 {
			t.Errorf("%T: bad link gave %v (code %s)", api, err, Code(err))
		}
		_, err = api.Remove(ctx, "sh17hpp7wqitbm65dzez656c2dlrpuz6rm7tgcd54e2imydjooi3z7q")
		if !errors.Is(err, ErrNotFound) || Code(err) != CodeNotFound {
			t.Errorf("%T: unknown ID gave %v (code %s)", api, err, Code(err))
		}
		_, err = api.Publish(ctx, PublishRequest{Path: filepath.Join(t.TempDir(), "none")}, nil)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%T: missing path gave %v", api, err)
		}
	}
	local, _ := n.Get(ctx, GetRequest{Link: "sh1x"}, nil)
	remote, _ := c.Get(ctx, GetRequest{Link: "sh1x"}, nil)
	if local.ID != remote.ID {
		t.Errorf("different items for one failure: %+v vs %+v", local, remote)
	}
	_, lerr := n.Get(ctx, GetRequest{Link: "sh1x"}, nil)
	_, rerr := c.Get(ctx, GetRequest{Link: "sh1x"}, nil)
	if lerr.Error() != rerr.Error() {
		t.Errorf("messages differ: local %q, remote %q", lerr, rerr)
	}
}
