package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/cputime"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/swarm"
)

// A child process talks to the coordinator in lines:
//
//	child -> coordinator: READY <peerid>@<addr>
//	coordinator -> leecher: GO <peerid>@<addr> ...
//	leecher -> coordinator: DONE <seconds>
//	coordinator -> child: EXIT
//	child -> coordinator: STATS <uploaded bytes> <peak RSS bytes> <CPU seconds since READY>

// startProfile writes a CPU profile of this child process to
// $SHOAL_BENCH_PROFILE/<role>-<pid>.pprof if that variable is set; call the
// returned function to stop it.
func startProfile(role string) func() {
	pd := os.Getenv("SHOAL_BENCH_PROFILE")
	if pd == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(pd, fmt.Sprintf("%s-%d.pprof", role, os.Getpid())))
	if err != nil || pprof.StartCPUProfile(f) != nil {
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// runChild runs a seeder or leecher role.
func runChild(role, dir, file, idText string, chunkSize, syncEvery int, superSeed, noTCP, pageCache bool) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := chunker.OpenStore(filepath.Join(dir, "store"))
	if err != nil {
		return err
	}
	// Windows sized for loopback: a chunk is at most a few hundred KiB and
	// the download keeps at most 16 MiB in flight per peer, so larger
	// windows only let unread data pile up in memory.
	node, err := overlay.New(overlay.Config{
		Logger:              logger,
		InitialStreamWindow: 512 << 10, MaxStreamWindow: 2 << 20,
		InitialConnWindow: 4 << 20, MaxConnWindow: 8 << 20,
		TCP: !noTCP,
	})
	if err != nil {
		return err
	}
	defer node.Close() // after Run has returned: releases the socket
	nodeCtx, stopNode := context.WithCancel(context.Background())
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- node.Run(nodeCtx) }()
	defer func() { stopNode(); <-nodeDone }()
	srv := swarm.NewServer(swarm.ServerConfig{Logger: logger, NoSuperSeed: !superSeed})
	defer srv.Close()
	var lastConn atomic.Pointer[quic.Conn] // for SHOAL_BENCH_DEBUG
	node.Handle(swarm.Tag, func(ctx context.Context, c *overlay.Conn, s *quic.Stream) {
		lastConn.Store(c.QUIC())
		srv.ServeStream(ctx, c.PeerID(), s)
	})
	node.HandleTCP(swarm.Tag, func(ctx context.Context, peer identity.PeerID, s overlay.Stream) {
		srv.ServeStream(ctx, peer, s)
	})
	id, err := chunker.ParseID(idText)
	if err != nil {
		return err
	}
	if role == "seeder" {
		pub, err := chunker.Publish(context.Background(), store, file, chunker.PublishOptions{ChunkSize: chunkSize})
		if err != nil {
			return err
		}
		if pub.ID != id {
			return fmt.Errorf("published %s, coordinator expects %s", pub.ID, id)
		}
		it, err := store.Open(id)
		if err != nil {
			return err
		}
		defer it.Close()
		srv.Seed(id, swarm.ItemSource(it))
	}
	cpu0 := cputime.Process().Seconds()
	fmt.Printf("READY %s@%s\n", node.PeerID(), node.LocalAddr())
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	var d *swarm.Download
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "GO":
			start := time.Now()
			var err error
			d, err = swarm.NewDownload(swarm.Config{Logger: logger, Server: srv, SkipParity: true, Chunker: chunker.DownloadOptions{SyncEvery: syncEvery, PageCache: pageCache}}, dialer(node), store, id, filepath.Join(dir, "out"))
			if err != nil {
				return err
			}
			for _, p := range f[1:] {
				pid, addr, err := parsePeer(p)
				if err != nil {
					return err
				}
				d.AddPeer(pid, addr)
			}
			if os.Getenv("SHOAL_BENCH_DEBUG") != "" {
				go phases(ctx, d, start)
			}
			go func() {
				err := d.Run(ctx)
				if err == nil {
					fmt.Printf("DONE %f\n", time.Since(start).Seconds())
				} else {
					fmt.Printf("FAILED %v\n", err)
				}
				runDone <- err
			}()
		case "EXIT":
			up, _ := srv.Stats()
			cancel()
			if d != nil {
				<-runDone
				d.Close()
			}
			if d != nil && os.Getenv("SHOAL_BENCH_DEBUG") != "" {
				p := d.Progress()
				_, chunks := srv.Stats()
				fmt.Fprintf(os.Stderr, "leecher %s: received %d verified %d fetched %d bad %d; uploaded %d bytes in %d chunks\n",
					node.PeerID().Short(), p.Received, p.Verified, p.Fetched, p.BadChunks, up, chunks)
			}
			if d == nil && os.Getenv("SHOAL_BENCH_DEBUG") != "" {
				fmt.Fprintf(os.Stderr, "seeder %s: super-seeding %+v\n", node.PeerID().Short(), srv.SuperSeedCounters())
			}
			if qc := lastConn.Load(); qc != nil && os.Getenv("SHOAL_BENCH_DEBUG") != "" {
				printConnStats(role, qc)
			}
			fmt.Printf("STATS %d %d %f\n", up, peakRSS(), cputime.Process().Seconds()-cpu0)
			return nil
		}
	}
	return in.Err()
}

func dialer(n *overlay.Node) swarm.Dialer {
	return swarm.DialerFunc(func(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (swarm.Stream, error) {
		c, err := n.Dial(ctx, peer, addr)
		if err != nil {
			return nil, err
		}
		return n.OpenBulkStream(ctx, c, swarm.Tag)
	})
}

func parsePeer(s string) (identity.PeerID, netip.AddrPort, error) {
	idText, addrText, ok := strings.Cut(s, "@")
	if !ok {
		return identity.PeerID{}, netip.AddrPort{}, fmt.Errorf("peer %q: want peerid@addr", s)
	}
	pid, err := identity.ParsePeerID(idText)
	if err != nil {
		return pid, netip.AddrPort{}, err
	}
	addr, err := netip.ParseAddrPort(addrText)
	return pid, addr, err
}

// peakRSS returns VmHWM from /proc/self/status in bytes (0 if unknown).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// printConnStats prints quic-go's counters of one connection to stderr.
func printConnStats(who string, qc *quic.Conn) {
	st := qc.ConnectionStats()
	fmt.Fprintf(os.Stderr, "%s conn: sent %d packets %d bytes, received %d packets, lost %d packets, srtt %v cwnd %d\n",
		who, st.PacketsSent, st.BytesSent, st.PacketsReceived, st.PacketsLost, st.SmoothedRTT, st.CongestionWindow)
}

// phases prints to stderr when the first byte arrived and when the last
// data chunk was verified (before the final sync), relative to start.
func phases(ctx context.Context, d *swarm.Download, start time.Time) {
	var first time.Duration
	var series []int64
	last := int64(0)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := d.Progress()
		if n := int(time.Since(start) / (250 * time.Millisecond)); n > len(series) {
			series = append(series, (p.Received-last)*4/1e6)
			last = p.Received
		}
		if first == 0 && p.Received > 0 {
			first = time.Since(start)
		}
		if p.Size > 0 && p.Verified == p.Size {
			fmt.Fprintf(os.Stderr, "leecher phases: first byte %v, all verified %v; MB/s per 250 ms %v\n", first, time.Since(start), series)
			return
		}
	}
}
