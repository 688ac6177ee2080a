package seed

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/internal/netem"
	"github.com/shoal-p2p/shoal/swarm"
)

// Hidden test hooks, read from the environment at Start. They exist for the
// drills in internal/drill, which run real node processes in network
// namespaces, and are not part of the node's documented configuration.
//
//   - SHOAL_TEST_NETEM="delay=20ms,jitter=5ms,loss=0.02,reorder=0.01,seed=1"
//     wraps the node's UDP socket in internal/netem (egress impairments).
//   - SHOAL_TEST_CORRUPT_UPLOADS=1 makes every seeded item serve chunks with
//     flipped bytes: a lying peer.
const (
	envTestNetem   = "SHOAL_TEST_NETEM"
	envTestCorrupt = "SHOAL_TEST_CORRUPT_UPLOADS"
)

// testPacketConn binds listen and wraps it in netem when SHOAL_TEST_NETEM is
// set; otherwise it returns nil and the overlay binds the socket itself.
func testPacketConn(listen string) (net.PacketConn, error) {
	spec := os.Getenv(envTestNetem)
	if spec == "" {
		return nil, nil
	}
	cfg, err := parseNetemSpec(spec)
	if err != nil {
		return nil, fmt.Errorf("seed: %s: %w", envTestNetem, err)
	}
	pc, err := net.ListenPacket("udp", listen)
	if err != nil {
		return nil, fmt.Errorf("seed: opening UDP %s: %w", listen, err)
	}
	c, err := netem.Wrap(pc, cfg)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("seed: %s: %w", envTestNetem, err)
	}
	return c, nil
}

// parseNetemSpec reads "key=value,..." with keys delay, jitter,
// reorder_delay (durations), loss, reorder (probabilities), seed and queue.
func parseNetemSpec(spec string) (netem.Config, error) {
	var cfg netem.Config
	for _, kv := range strings.Split(spec, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return cfg, fmt.Errorf("%q: want key=value", kv)
		}
		var err error
		switch k {
		case "delay":
			cfg.Delay, err = time.ParseDuration(v)
		case "jitter":
			cfg.Jitter, err = time.ParseDuration(v)
		case "reorder_delay":
			cfg.ReorderDelay, err = time.ParseDuration(v)
		case "loss":
			cfg.Loss, err = strconv.ParseFloat(v, 64)
		case "reorder":
			cfg.Reorder, err = strconv.ParseFloat(v, 64)
		case "seed":
			cfg.Seed, err = strconv.ParseUint(v, 10, 64)
		case "queue":
			cfg.QueueLimit, err = strconv.Atoi(v)
		default:
			return cfg, fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			return cfg, fmt.Errorf("%s: %w", k, err)
		}
	}
	return cfg, nil
}

// testSource wraps src so that it serves corrupt chunks when
// SHOAL_TEST_CORRUPT_UPLOADS is set; otherwise it returns src.
func testSource(src swarm.Source) swarm.Source {
	if os.Getenv(envTestCorrupt) == "" {
		return src
	}
	return corruptSource{src}
}

// corruptSource flips bytes of every chunk it serves.
type corruptSource struct{ swarm.Source }

func (c corruptSource) ReadChunk(i int, buf []byte) ([]byte, error) {
	b, err := c.Source.ReadChunk(i, buf)
	if err != nil || len(b) == 0 {
		return b, err
	}
	// b may alias a read-only mapping: corrupt a copy.
	out := make([]byte, len(b))
	copy(out, b)
	for j := 0; j < len(out); j += 4096 {
		out[j] ^= 0xa5
	}
	return out, nil
}
