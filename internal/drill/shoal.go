//go:build linux

package drill

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/seed"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binaries of the drills: the shipped node and the drill-only program
// (shoal-drill, a node with impairments and a lying source).
const (
	shoalBin = "shoal"
	drillBin = "shoal-drill"
)

// Binary builds cmd/shoal and internal/drill/shoal-drill once per test
// process and returns the path of shoal.
func Binary(t testing.TB) string {
	t.Helper()
	if why := Available(); why != "" {
		t.Skip(why)
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "shoaldrill-bin-"); buildErr != nil {
			return
		}
		for name, pkg := range map[string]string{
			shoalBin: "github.com/shoal-p2p/shoal/cmd/shoal",
			drillBin: "github.com/shoal-p2p/shoal/internal/drill/shoal-drill",
		} {
			c := exec.Command("go", "build", "-o", filepath.Join(buildDir, name), pkg)
			if _, file, _, ok := runtime.Caller(0); ok {
				c.Dir = filepath.Dir(file) // inside the module, wherever the test runs
			}
			if out, err := c.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, shoalBin)
}

// Main runs the tests, removes the binary and fails the run if a namespace
// of this process is left behind. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		bins := []string{filepath.Join(buildDir, shoalBin), filepath.Join(buildDir, drillBin)}
		pids := running(bins...)
		for i := 0; i < 50 && len(pids) > 0; i++ { // killed ones may take a moment to go
			time.Sleep(100 * time.Millisecond)
			pids = running(bins...)
		}
		if len(pids) > 0 {
			fmt.Fprintf(os.Stderr, "drill: shoal processes left running: %v\n", pids)
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			code = 1
		}
		os.RemoveAll(buildDir)
	}
	if Available() == "" {
		if left, err := Namespaces(OwnPrefix()); err != nil || len(left) > 0 {
			fmt.Fprintf(os.Stderr, "drill: namespaces left behind: %v %v\n", left, err)
			for _, ns := range left {
				deleteNS(ns)
			}
			code = 1
		}
	}
	os.Exit(code)
}

// Node is a shoal node process running in a host.
type Node struct {
	Host   *Host
	Home   string // HOME of its commands; Data lives in it
	Data   string
	Status seed.Status // as printed at start

	bin    string
	env    []string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
}

// NodeOptions tunes StartNode. Netem or Corrupt run the node with the
// drill-only program shoal-drill instead of shoal.
type NodeOptions struct {
	Bootstrap []string // host:port to join through
	Env       []string // extra environment, e.g. SHOAL_DEBUG=1
	Listen    string   // UDP address to bind; default <host address>:Port
	Netem     string   // egress impairments, e.g. "delay=20ms,loss=0.01,seed=1" (netem.ParseConfig)
	Config    string   // the node's config file (JSON), e.g. {"relay": true}
	Corrupt   bool     // serve corrupt chunks: a lying peer
}

// Port is the UDP port every node listens on (each host has its own
// address).
const Port = 7745

// StartNode starts "shoal node" in h with a fresh data folder under dir and
// waits for it to print its status. The process is killed at Net.Close.
func StartNode(t testing.TB, bin string, h *Host, dir string, o NodeOptions) *Node {
	t.Helper()
	home := filepath.Join(dir, fmt.Sprintf("h%d-%d", h.Index, time.Now().UnixNano()))
	n := &Node{Host: h, Home: home, Data: filepath.Join(home, "data"), bin: bin, stderr: &syncBuffer{}, done: make(chan struct{})}
	n.env = append(os.Environ(),
		"HOME="+home,
		"XDG_DATA_HOME="+filepath.Join(home, "xdg-data"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "xdg-config"),
		"SHOAL_DATA_DIR=", "SHOAL_CONFIG=")
	n.env = append(n.env, o.Env...)
	if o.Config != "" {
		cf := filepath.Join(home, "xdg-config", "shoal", "config.json")
		if err := os.MkdirAll(filepath.Dir(cf), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cf, []byte(o.Config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	listen := o.Listen
	if listen == "" {
		listen = fmt.Sprintf("%s:%d", h.Addr, Port)
	}
	args := []string{"node", "--json", "--data", n.Data, "--listen", listen, "--api", "127.0.0.1:0"}
	for _, b := range o.Bootstrap {
		args = append(args, "--bootstrap", b)
	}
	nodeBin := bin
	if o.Netem != "" || o.Corrupt {
		nodeBin = filepath.Join(filepath.Dir(bin), drillBin)
		if o.Netem != "" {
			args = append(args, "--netem", o.Netem)
		}
		if o.Corrupt {
			args = append(args, "--corrupt-uploads")
		}
	}
	n.cmd = h.Command(nodeBin, args...)
	n.cmd.Env = n.env
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stderr = n.stderr
	if logDir := os.Getenv("SHOAL_DRILL_LOGS"); logDir != "" {
		// Debug logs of every node, one file per node, kept after the run.
		f, err := os.Create(filepath.Join(logDir, filepath.Base(home)+"-"+h.NS+".log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		n.cmd.Env = append(n.cmd.Env, "SHOAL_DEBUG=1")
		n.cmd.Stderr = io.MultiWriter(n.stderr, f)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting node in %s: %v", h.NS, err)
	}
	first := make(chan error, 1)
	go func() {
		err := json.NewDecoder(bufio.NewReader(stdout)).Decode(&n.Status)
		first <- err
		if err == nil {
			io.Copy(io.Discard, stdout)
		}
		n.cmd.Wait()
		close(n.done)
	}()
	// Killed (and waited for) before the test's earlier cleanups, such as
	// removing the TempDir holding its data folder: a node may still be
	// writing there (rebuilding parity after a get).
	t.Cleanup(n.Kill)
	select {
	case err := <-first:
		if err != nil {
			t.Fatalf("node in %s did not print its status: %v; stderr: %s", h.NS, err, n.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("node in %s did not start within 60 s; stderr: %s", h.NS, n.stderr.String())
	}
	return n
}

// Addr is the node's overlay address, host:port.
func (n *Node) Addr() string { return fmt.Sprintf("%s:%d", n.Host.Addr, Port) }

// Kill kills the node at once (no clean shutdown) and waits for it.
func (n *Node) Kill() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// Stderr returns what the node wrote to stderr so far.
func (n *Node) Stderr() string { return n.stderr.String() }

// Shoal runs one shoal command against the node's data folder inside its
// host and returns stdout; a non-zero exit is an error carrying stderr.
func (n *Node) Shoal(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"--data", n.Data}, args...)
	c := n.Host.Command(n.bin, full...)
	c.Env = n.env
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Start(); err != nil {
		return nil, err
	}
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			return stdout.Bytes(), fmt.Errorf("shoal %s in %s: %v: %s", strings.Join(args, " "), n.Host.NS, err, lastLine(stderr.String()))
		}
		return stdout.Bytes(), nil
	case <-ctx.Done():
		c.Process.Kill()
		<-waited
		return stdout.Bytes(), fmt.Errorf("shoal %s in %s: %w", strings.Join(args, " "), n.Host.NS, context.Cause(ctx))
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// Publish publishes path (a file or folder the node can read) and returns
// the result.
func (n *Node) Publish(ctx context.Context, path string) (seed.Published, error) {
	out, err := n.Shoal(ctx, "publish", "--json", path)
	if err != nil {
		return seed.Published{}, err
	}
	var pubs []seed.Published
	if err := json.Unmarshal(out, &pubs); err != nil || len(pubs) != 1 {
		return seed.Published{}, fmt.Errorf("publish printed %q: %v", out, err)
	}
	return pubs[0], nil
}

// Get downloads link into the folder out with "shoal get" run in the host;
// the node does the work.
func (n *Node) Get(ctx context.Context, link, out string, wait time.Duration) (seed.Item, error) {
	b, err := n.Shoal(ctx, "get", "--json", link, "-o", out, "--wait", wait.String())
	if err != nil {
		return seed.Item{}, err
	}
	var it seed.Item
	if err := json.Unmarshal(b, &it); err != nil {
		return it, fmt.Errorf("get printed %q: %v", b, err)
	}
	return it, nil
}

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil // keep the first MiB
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running lists the processes whose executable is one of bins.
func running(bins ...string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && slices.Contains(bins, exe) {
			pids = append(pids, pid)
		}
	}
	return pids
}
