//go:build linux

package drill

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoal-p2p/shoal/seed"
)

// inNS runs f on a thread switched into the namespace ns, then switches
// the thread back. Sockets f opens stay in ns. The control API listens on
// the host's own loopback, which only that namespace can reach.
func inNS(ns string, f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- err
			return
		}
		defer self.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		err = f()
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else: leave the thread locked; it dies with this goroutine
		ch <- err
	}()
	return <-ch
}

// dialIn opens a TCP connection to addr from inside the namespace ns.
func dialIn(ctx context.Context, ns, addr string) (c net.Conn, err error) {
	err = inNS(ns, func() error {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// api calls the node's control API from inside its host.
func (n *Node) api(ctx context.Context, path string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(n.Data, "api.json"))
	if err != nil {
		return nil, fmt.Errorf("node in %s: %w", n.Host.NS, err)
	}
	var af struct {
		Addr string `json:"addr"`
	}
	if err := json.Unmarshal(b, &af); err != nil {
		return nil, fmt.Errorf("node in %s: api.json: %w", n.Host.NS, err)
	}
	tok, err := os.ReadFile(filepath.Join(n.Data, "api-token"))
	if err != nil {
		return nil, fmt.Errorf("node in %s: %w", n.Host.NS, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialIn(ctx, n.Host.NS, addr)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+af.Addr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node in %s: GET %s: %w", n.Host.NS, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("node in %s: GET %s: %w", n.Host.NS, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("node in %s: GET %s: %s: %s", n.Host.NS, path, resp.Status, body)
	}
	return body, nil
}

// LiveStatus asks the running node for its status (GET /v1/status).
func (n *Node) LiveStatus(ctx context.Context) (seed.Status, error) {
	var st seed.Status
	b, err := n.api(ctx, "/v1/status")
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// Peers asks the running node which peers it knows (GET /v1/peers).
func (n *Node) Peers(ctx context.Context) ([]seed.PeerInfo, error) {
	var ps []seed.PeerInfo
	b, err := n.api(ctx, "/v1/peers")
	if err != nil {
		return nil, err
	}
	return ps, json.Unmarshal(b, &ps)
}

// Metrics reads the node's counters (GET /metrics), by name.
func (n *Node) Metrics(ctx context.Context) (map[string]int64, error) {
	b, err := n.api(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	m := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		// The Prometheus client library writes large values as floats
		// (5.0331648e+07).
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		m[name] = int64(v)
	}
	return m, nil
}
