package seed

import (
	"context"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/swarm"
)

// countingConn counts the packets the node sends through it.
type countingConn struct {
	net.PacketConn
	sent *atomic.Int64
}

func (c countingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.sent.Add(1)
	return c.PacketConn.WriteTo(p, addr)
}

// TestConfigWrappers: Config.WrapPacketConn receives the node's socket and
// carries its traffic; Config.WrapSource wraps every seeded item. These are
// the only ways the drill program changes a node (no hidden hooks).
func TestConfigWrappers(t *testing.T) {
	var sent, wrapped atomic.Int64
	pub, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", API: "off",
		WrapPacketConn: func(pc net.PacketConn) (net.PacketConn, error) {
			return countingConn{pc, &sent}, nil
		},
		WrapSource: func(s swarm.Source) swarm.Source { wrapped.Add(1); return s },
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { pub.Close() })
	src := filepath.Join(t.TempDir(), "tree")
	files := writeTree(t, src, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if wrapped.Load() != 1 {
		t.Fatalf("WrapSource called %d times for one published item, want 1", wrapped.Load())
	}
	out := t.TempDir()
	if _, err := startNode(t).Get(ctx, GetRequest{Link: p.Link, Out: out}, nil); err != nil {
		t.Fatalf("Get: %v", err)
	}
	checkTree(t, filepath.Join(out, "tree"), files)
	if sent.Load() == 0 {
		t.Fatal("the publisher served a download without writing through WrapPacketConn's socket")
	}
}
