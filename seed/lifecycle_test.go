package seed

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// ourGoroutines returns the stacks of the goroutines running shoal code,
// by goroutine ID.
func ourGoroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	ids := map[string]string{}
	head := regexp.MustCompile(`^goroutine (\d+) `)
	for _, g := range strings.Split(string(buf), "\n\n") {
		m := head.FindStringSubmatch(g)
		if m != nil && strings.Contains(g, "shoal-p2p/shoal/") && !strings.Contains(g, "ourGoroutines") {
			ids[m[1]] = g
		}
	}
	return ids
}

// TestNewStartsNothingAndCloseReleases: New binds what callers need to see
// (socket, control API, gateway) but starts no goroutine; Close without
// Run frees the folder's lock and every address, and Run after Close
// refuses.
func TestNewStartsNothingAndCloseReleases(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, Listen: "127.0.0.1:0", API: "127.0.0.1:0", Gateway: "127.0.0.1:0"}
	before := ourGoroutines()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for id, stack := range ourGoroutines() {
		// overlay.New binds the socket and its QUIC listener: quic-go's
		// reader and the batching socket's flusher belong to that socket
		// and end with its Close; they are not goroutines of the node.
		socket := strings.Contains(stack, "udpbatch.(*Conn).flusher") ||
			strings.Contains(stack, "created by github.com/quic-go/quic-go.(*Transport)")
		if _, ok := before[id]; !ok && !socket {
			n.Close()
			t.Fatalf("New started a goroutine:\n%s", stack)
		}
	}
	if !n.Addr().IsValid() || n.Addr().Port() == 0 || n.APIAddr() == "" || n.GatewayAddr() == "" {
		t.Fatalf("after New: Addr %v, APIAddr %q, GatewayAddr %q", n.Addr(), n.APIAddr(), n.GatewayAddr())
	}
	if _, err := os.Stat(filepath.Join(dir, socketFileName)); err != nil {
		t.Fatalf("control socket after New: %v", err)
	}
	udp, api, gw := n.Addr().String(), n.APIAddr(), n.GatewayAddr()

	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := n.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v, want ErrClosed", err)
	}
	pc, err := net.ListenPacket("udp", udp)
	if err != nil {
		t.Fatalf("UDP %s still held after Close: %v", udp, err)
	}
	pc.Close()
	for _, a := range []string{api, gw} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("TCP %s still held after Close: %v", a, err)
		}
		ln.Close()
	}
	n2, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", API: "off", Gateway: "off"})
	if err != nil {
		t.Fatalf("New on the folder after Close: %v", err)
	}
	n2.Close()
}

// TestNewRunCancel: nodes built by New and run by Run serve Publish, Get
// and the control API; cancelling Run's ctx stops the node, Run returns
// nil after its goroutines exited, and Close then releases the rest.
func TestNewRunCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(n *Node) (stop func() error) {
		rctx, rcancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- n.Run(rctx) }()
		return func() error { rcancel(); return <-errc }
	}

	pubDir := t.TempDir()
	pubNode, err := New(Config{DataDir: pubDir, Listen: "127.0.0.1:0", API: "off", Gateway: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer pubNode.Close()
	src := filepath.Join(t.TempDir(), "f.bin")
	data := bytes.Repeat([]byte("lifecycle"), 300000)
	os.WriteFile(src, data, 0o644)
	// Publish before Run: its announce waits for Run.
	pub, err := pubNode.Publish(ctx, PublishRequest{Path: src}, nil)
	if err != nil {
		t.Fatalf("Publish before Run: %v", err)
	}
	stopPub := run(pubNode)

	getDir := t.TempDir()
	getter, err := New(Config{DataDir: getDir, Listen: "127.0.0.1:0", API: "127.0.0.1:0", Gateway: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer getter.Close()
	stopGet := run(getter)
	c, err := Dial(ctx, getDir)
	if err != nil {
		t.Fatalf("Dial the control API: %v", err)
	}
	out := t.TempDir()
	if _, err := c.Get(ctx, GetRequest{Link: pub.Link, Out: out}, nil); err != nil {
		t.Fatalf("Get over the control API: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "f.bin")); !bytes.Equal(got, data) {
		t.Fatal("output differs from the source")
	}

	if err := pubNode.Run(ctx); err == nil || errors.Is(err, ErrClosed) { // the first one served the Get
		t.Fatalf("second Run: %v, want an error that is not ErrClosed", err)
	}
	if err := stopGet(); err != nil {
		t.Fatalf("Run after cancel: %v, want nil", err)
	}
	if _, err := os.Stat(filepath.Join(getDir, socketFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("control socket after Run stopped: %v, want gone", err)
	}
	if _, err := getter.Get(ctx, GetRequest{Link: pub.Link, Out: t.TempDir()}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Run stopped: %v, want ErrClosed", err)
	}
	if err := getter.Close(); err != nil {
		t.Fatal(err)
	}
	if err := stopPub(); err != nil {
		t.Fatalf("publisher's Run after cancel: %v", err)
	}
}
