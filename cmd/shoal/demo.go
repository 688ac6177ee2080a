package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/zeebo/blake3"
	"golang.org/x/term"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/seed"
)

func init() { addCommand(newDemoCmd) }

func newDemoCmd(a *app) *cobra.Command {
	var (
		peers    int
		sizeText string
		keep     bool
	)
	c := &cobra.Command{
		Use:     "demo",
		Short:   "run a local swarm on loopback and watch it work",
		Example: "  shoal demo\n  shoal demo --peers 8 --size 256MiB",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			size, err := seed.ParseSize(sizeText)
			if err != nil {
				return usagef("demo: --size: %v", err)
			}
			if peers < 1 || peers > 32 {
				return usagef("demo: --peers must be between 1 and 32")
			}
			return runDemo(cmd.Context(), a, peers, size, keep)
		},
	}
	f := c.Flags()
	f.IntVar(&peers, "peers", 4, "downloaders, 1 to 32")
	f.StringVar(&sizeText, "size", "64MiB", "size of the generated file (e.g. 512KiB, 64MiB, 1GiB)")
	f.BoolVar(&keep, "keep", false, "keep the demo's folder afterwards")
	return c
}

// runDemo starts a publisher and several downloaders in this process, on
// loopback, publishes a generated file and shows the downloads.
func runDemo(ctx context.Context, a *app, npeers int, size int64, keep bool) error {
	dir, err := os.MkdirTemp("", "shoal-demo-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintf(os.Stderr, "demo folder: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	say := func(format string, args ...any) {
		a.say(format, args...)
	}
	say("shoal demo: 1 publisher and %d downloaders on 127.0.0.1, one process, nothing else needed", npeers)

	pubNode, err := seed.Start(seed.Config{DataDir: filepath.Join(dir, "publisher"), Listen: "127.0.0.1:0", API: "off"})
	if err != nil {
		return err
	}
	defer pubNode.Close()
	src := filepath.Join(dir, "publisher", "demo.bin")
	sum, err := writeRandomFile(src, size)
	if err != nil {
		return fmt.Errorf("demo: writing the file: %w", err)
	}
	start := time.Now()
	bar := newBar(a, "hashing and encoding")
	pub, err := pubNode.Publish(ctx, seed.PublishRequest{Path: src}, bar.update)
	bar.end(err)
	if err != nil {
		return err
	}
	hashTime := time.Since(start)
	say("published %s (%s) in %s: %s", pub.Item.Name, seed.FormatSize(size), hashTime.Round(time.Millisecond), pub.Link)

	// Downloaders: all but the last use the link's hint; the last has only
	// the content ID and a bootstrap address, and finds peers in the DHT.
	nodes := make([]*seed.Node, npeers)
	for i := range nodes {
		n, err := seed.Start(seed.Config{
			DataDir:   filepath.Join(dir, fmt.Sprintf("peer%d", i+1)),
			Listen:    "127.0.0.1:0",
			API:       "off",
			Bootstrap: []string{pubNode.Addr().String()},
		})
		if err != nil {
			return err
		}
		defer n.Close()
		nodes[i] = n
	}
	dhtOnly := pub.Link
	if l, err := chunker.ParseLink(pub.Link); err == nil {
		l.Peers = nil
		dhtOnly = l.String()
	}

	type result struct {
		how      string
		progress seed.Progress
		took     time.Duration
		path     string
		err      error
	}
	results := make([]result, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	start = time.Now()
	for i, n := range nodes {
		link, how := pub.Link, "link hint"
		if i == len(nodes)-1 && len(nodes) > 1 {
			link, how = dhtOnly, "DHT only"
		}
		results[i].how = how
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := seed.GetRequest{Link: link, Out: filepath.Join(dir, fmt.Sprintf("peer%d", i+1), "out")}
			it, err := n.Get(ctx, req, func(p seed.Progress) {
				mu.Lock()
				results[i].progress = p
				mu.Unlock()
			})
			mu.Lock()
			results[i].took, results[i].path, results[i].err = time.Since(start), it.Path, err
			mu.Unlock()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tty := !a.json && term.IsTerminal(int(os.Stderr.Fd()))
	drawn := 0
	draw := func() {
		mu.Lock()
		defer mu.Unlock()
		var b strings.Builder
		if drawn > 0 {
			fmt.Fprintf(&b, "\x1b[%dA", drawn)
		}
		for i, r := range results {
			p := r.progress
			frac := 0.0
			if p.Total > 0 {
				frac = float64(p.Done) / float64(p.Total)
			}
			if r.took > 0 && r.err == nil {
				frac = 1
			}
			filled := int(frac * 24)
			fmt.Fprintf(&b, "\x1b[2Kpeer %-2d [%s%s] %3.0f%%  %9s/s  %d peers  (%s)\n", i+1,
				strings.Repeat("#", filled), strings.Repeat(".", 24-filled), 100*frac, seed.FormatSize(p.Rate), p.Peers, r.how)
		}
		drawn = len(results)
		os.Stderr.WriteString(b.String())
	}
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			if tty {
				draw()
			}
		}
	}
	if tty {
		draw()
	}

	// Verify every output byte for byte against the source.
	failed := 0
	for i, r := range results {
		if r.err != nil {
			say("peer %d: %v", i+1, r.err)
			failed++
			continue
		}
		got, err := hashFile(r.path)
		if err != nil || !bytes.Equal(got, sum) {
			say("peer %d: output differs from the source (%v)", i+1, err)
			failed++
		}
	}
	st, _ := pubNode.Status(ctx)
	up := st.BytesUp
	delivered := size * int64(len(nodes))
	if a.json {
		type row struct {
			Peer    int     `json:"peer"`
			How     string  `json:"how"`
			Seconds float64 `json:"seconds"`
			MBps    float64 `json:"MBps"`
		}
		var rows []row
		for i, r := range results {
			rows = append(rows, row{i + 1, r.how, r.took.Seconds(), float64(size) / 1e6 / r.took.Seconds()})
		}
		a.printJSON(map[string]any{"size": size, "downloaders": rows, "publisher_uploaded": up, "verified": failed == 0})
	} else {
		say("")
		for i, r := range results {
			if r.err == nil {
				say("peer %-2d %-9s  %6.2f s  %8s/s", i+1, r.how, r.took.Seconds(), seed.FormatSize(int64(float64(size)/r.took.Seconds())))
			}
		}
		if delivered > 0 {
			say("the publisher uploaded %s for %s delivered: the downloaders served each other the other %.0f%%",
				seed.FormatSize(up), seed.FormatSize(delivered), max(0, 100*(1-float64(up)/float64(delivered))))
		}
	}
	if failed > 0 {
		return fmt.Errorf("demo: %d of %d downloads failed", failed, len(nodes))
	}
	say("all %d downloads verified byte for byte (BLAKE3 %x…)", len(nodes), sum[:8])
	return nil
}

// writeRandomFile writes size pseudo-random bytes and returns their BLAKE3.
func writeRandomFile(path string, size int64) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{'s', 'h', 'o', 'a', 'l'})
	h := blake3.New()
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := int(min(left, int64(len(buf))))
		rng.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			return nil, err
		}
		left -= int64(n)
	}
	return h.Sum(nil), f.Close()
}

func hashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := blake3.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
