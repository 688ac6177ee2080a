//go:build linux

package drill

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/seed"
)

func TestMain(m *testing.M) { Main(m) }

// stage is what a publishing drill starts from: hosts on a fresh network,
// a random source file, and a node on host 0 that has published it.
type stage struct {
	bin string
	nt  *Net
	hs  []*Host
	dir string
	sum [32]byte // SHA-256 of the published file
	pub *Node
	p   seed.Published
}

// setStage builds a drill's stage: n hosts, a random file called name of
// size bytes from seed, the publisher's uplink shaped to up bits per second
// (0: unshaped), and the file published within ctx.
func setStage(ctx context.Context, t *testing.T, n int, name string, size int64, seed uint64, up int64) *stage {
	t.Helper()
	s := &stage{bin: Binary(t), nt: New(t, n), dir: t.TempDir()}
	s.hs = s.nt.Hosts()
	src := filepath.Join(s.dir, "src", name)
	s.sum = writeRandom(t, src, size, seed)
	if up > 0 {
		if err := s.hs[0].Shape(0, up); err != nil {
			t.Fatal(err)
		}
	}
	s.pub = StartNode(t, s.bin, s.hs[0], s.dir, NodeOptions{})
	var err error
	if s.p, err = s.pub.Publish(ctx, src); err != nil {
		t.Fatal(err)
	}
	return s
}

// long reports whether the full-size drills were asked for.
func long() bool { return os.Getenv("SHOAL_LONG") == "1" }

// pick returns short, or full under SHOAL_LONG=1.
func pick[T any](short, full T) T {
	if long() {
		return full
	}
	return short
}

const mib = 1 << 20

// writeRandom writes size seeded random bytes to path and returns their
// SHA-256.
func writeRandom(t *testing.T, path string, size int64, seed uint64) [32]byte {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.NewChaCha8(key), size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// sameBytes fails unless the file at path hashes to want.
func sameBytes(t *testing.T, who, path string, want [32]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Errorf("%s: %v", who, err)
		return
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Errorf("%s: reading %s: %v", who, path, err)
		return
	}
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		t.Errorf("%s: %s has sha256 %x, want %x", who, path, got[:8], want[:8])
	}
}

// figures logs one line of figures for docs/drills.md.
func figures(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURES %s: %s", t.Name(), fmt.Sprintf(format, args...))
}

// metric reads one counter of a running node, failing the test on error.
func metric(t *testing.T, n *Node, name string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := n.Metrics(ctx)
	if err != nil {
		t.Fatalf("metrics: %v; the node's stderr ends: %s", err, tail(n.Stderr(), 2000))
	}
	v, ok := m[name]
	if !ok {
		t.Fatalf("node in %s has no metric %s", n.Host.NS, name)
	}
	return v
}

// TestNetLeavesNothing checks the harness itself: hosts reach each other
// over their own addresses and Close deletes every namespace.
func TestNetLeavesNothing(t *testing.T) {
	nt := New(t, 2)
	hs := nt.Hosts()
	if hs[0].Addr == hs[1].Addr {
		t.Fatalf("two hosts share address %s", hs[0].Addr)
	}
	out, err := hs[0].Command("ip", "-4", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(hs[0].Addr.String()+"/24")) {
		t.Fatalf("host 0's eth0: %s (%v), want address %s", out, err, hs[0].Addr)
	}
	if err := hs[0].Shape(100e6, 50e6); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ ns, dev, rate string }{
		{nt.bridge, hs[0].veth, "100Mbit"}, // what host 0 receives
		{hs[0].NS, "eth0", "50Mbit"},       // what host 0 sends
	} {
		out, err := exec.Command("tc", "-n", c.ns, "qdisc", "show", "dev", c.dev).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("tbf")) || !bytes.Contains(out, []byte("rate "+c.rate)) {
			t.Errorf("qdisc of %s in %s: %s (%v), want tbf at %s", c.dev, c.ns, out, err, c.rate)
		}
	}
	carrier := func() bool {
		out, err := exec.Command("ip", "-n", hs[0].NS, "link", "show", "dev", "eth0").CombinedOutput()
		if err != nil {
			t.Fatalf("ip link show: %v: %s", err, out)
		}
		return !bytes.Contains(out, []byte("NO-CARRIER"))
	}
	if err := hs[0].Cut(); err != nil {
		t.Fatal(err)
	}
	if carrier() {
		t.Error("host 0's eth0 still has carrier after Cut")
	}
	if err := hs[0].Restore(); err != nil {
		t.Fatal(err)
	}
	if !carrier() {
		t.Error("host 0's eth0 has no carrier after Restore")
	}
	names, err := Namespaces(nt.prefix)
	if err != nil || len(names) != 3 {
		t.Fatalf("namespaces %v (%v), want the bridge and 2 hosts", names, err)
	}
	nt.Close()
	if names, _ := Namespaces(nt.prefix); len(names) != 0 {
		t.Fatalf("Close left namespaces %v", names)
	}
}

// TestCleanLeftovers: namespaces of a run whose process is gone are
// deleted; those of live processes (this one) are kept.
func TestCleanLeftovers(t *testing.T) {
	nt := New(t, 1)                                 // this process's: must survive
	dead := fmt.Sprintf("%s999999999-1-br", Prefix) // above any pid_max
	if err := nt.ip("netns", "add", dead); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNS(dead) })
	CleanLeftovers()
	if names, _ := Namespaces(dead); len(names) != 0 {
		t.Errorf("CleanLeftovers kept %v of a dead process", names)
	}
	if names, _ := Namespaces(nt.prefix); len(names) != 2 {
		t.Errorf("CleanLeftovers left %v of this process, want its bridge and host", names)
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
