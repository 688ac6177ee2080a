// Command shoal-bench measures a whole swarm on 127.0.0.1: S seeders and L
// leechers, each a separate OS process (the binary re-executes itself with
// -role), moving one random file. It verifies every output byte for byte
// and prints one JSON line. With -quic-ref it also measures plain quic-go
// between two processes as a reference.
//
//	shoal-bench -seeders 1 -leechers 8 -size 1GiB [-quic-ref] [-chunk 262144]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/internal/benchfile"
	"github.com/shoal-p2p/shoal/internal/benchpeer"
)

func main() {
	var (
		role      = flag.String("role", "", "internal: child role (seeder, leecher, quicref-server, quicref-client)")
		dir       = flag.String("dir", "", "internal: child folder")
		file      = flag.String("file", "", "internal: published file")
		id        = flag.String("id", "", "internal: content ID")
		addr      = flag.String("addr", "", "internal: quic reference server address")
		listen    = flag.String("listen", "127.0.0.1:0", "internal: quic reference server listen address")
		seeders   = flag.Int("seeders", 1, "seeder processes")
		leechers  = flag.Int("leechers", 1, "leecher processes")
		sizeText  = flag.String("size", "1GiB", "file size (B, KiB, MiB, GiB suffixes)")
		chunk     = flag.Int("chunk", 0, "chunk size in bytes (0: automatic)")
		syncN     = flag.Int("sync-every", 0, "leechers flush data and bitmap every this many chunks (0: chunker default)")
		quicRef   = flag.Bool("quic-ref", false, "also measure plain quic-go between two processes")
		keep      = flag.Bool("keep", false, "keep the work folder")
		tmp       = flag.String("tmp", "", "work folder parent (default: the system temp folder)")
		noTCP     = flag.Bool("no-tcp", false, "keep chunk streams on QUIC (no TCP transport), for side-by-side runs")
		superSeed = flag.Bool("superseed", true, "seeders super-seed, the default (each chunk sent to one peer as far as it can); -superseed=false sets swarm.ServerConfig.NoSuperSeed, for side-by-side runs")
		pageCache = flag.Bool("page-cache", false, "leechers write and read their output through the page cache (chunker.DownloadOptions.PageCache) instead of direct I/O, for side-by-side runs")
		srcFile   = flag.String("src", "", "publish this existing file instead of a fresh random one (its size wins over -size)")
	)
	flag.Parse()
	size, err := benchfile.ParseSize(*sizeText)
	if err != nil {
		fatal(err)
	}
	if *role != "" {
		defer startProfile(*role)()
	}
	switch *role {
	case "seeder", "leecher":
		err = runChild(*role, *dir, *file, *id, *chunk, *syncN, *superSeed, *noTCP, *pageCache)
	case "quicref-server":
		err = runRefServer(*listen)
	case "quicref-client":
		err = runRefClient(*addr, size)
	case "":
		err = coordinate(*seeders, *leechers, size, *chunk, *syncN, *quicRef, *keep, *tmp, *srcFile, *superSeed, *noTCP, *pageCache)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "shoal-bench:", err)
	os.Exit(1)
}

// Result is the JSON line.
type Result struct {
	Seeders        int      `json:"seeders"`
	Leechers       int      `json:"leechers"`
	Size           int64    `json:"size"`
	Seconds        float64  `json:"seconds"`
	MBpsPerLeecher float64  `json:"MBps_per_leecher"`
	SeederUploaded int64    `json:"seeder_uploaded"`
	PeakRSSLeecher int64    `json:"peak_rss_leecher"`
	Verified       bool     `json:"verified"`
	QUICRefMBps    *float64 `json:"quic_ref_MBps,omitempty"`
	// CPU seconds (user+system) of all swarm processes from READY to EXIT
	// (seeders after publishing), and of both quic-go reference processes:
	// a load-independent cost comparison.
	CPUSeconds    float64  `json:"cpu_seconds"`
	QUICRefCPUSec *float64 `json:"quic_ref_cpu_seconds,omitempty"`
	// The two reference runs (before and after the swarm) whose mean is
	// quic_ref_MBps.
	QUICRefRuns []float64 `json:"quic_ref_runs,omitempty"`
}

// start runs this binary again with args, as a child peer.
func start(args ...string) (*benchpeer.Peer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return benchpeer.Start(fmt.Sprintf("child %v", args[:2]), exec.Command(exe, args...))
}

func quicReference(size int64) (mbps, cpu float64, err error) {
	srv, err := start("-role", "quicref-server")
	if err != nil {
		return 0, 0, err
	}
	defer srv.Kill()
	f, err := srv.Expect("READY", 30*time.Second)
	if err != nil {
		return 0, 0, err
	}
	cl, err := start("-role", "quicref-client", "-addr", f[1], "-size", strconv.FormatInt(size, 10))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Cmd().Wait()
	f, err = cl.Expect("DONE", 10*time.Minute)
	if err != nil {
		return 0, 0, err
	}
	secs, _ := strconv.ParseFloat(f[1], 64)
	clientCPU, _ := strconv.ParseFloat(f[2], 64)
	g, err := srv.Expect("CPU", time.Minute)
	if err != nil {
		return 0, 0, err
	}
	serverCPU, _ := strconv.ParseFloat(g[1], 64)
	return float64(size) / 1e6 / secs, clientCPU + serverCPU, nil
}

func coordinate(nSeed, nLeech int, size int64, chunk, syncN int, quicRef, keep bool, tmp, srcFile string, superSeed, noTCP, pageCache bool) error {
	if nSeed < 1 || nLeech < 1 {
		return errors.New("need at least one seeder and one leecher")
	}
	work, err := os.MkdirTemp(tmp, "shoal-bench-*")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	src := filepath.Join(work, "file.bin")
	if srcFile != "" {
		fi, err := os.Stat(srcFile)
		if err != nil {
			return err
		}
		if src, err = filepath.Abs(srcFile); err != nil {
			return err
		}
		size = fi.Size()
	} else if err := benchfile.WriteRandom(src, size, [32]byte{'s', 'h', 'o', 'a', 'l'}); err != nil {
		return err
	}
	// A file changed within the last second is not trusted by the seeder's
	// verify cache and is hashed again as it is first served (see the
	// chunker package doc); files published in practice are older. Let the
	// source settle so the seeders measure that common case.
	time.Sleep(1100 * time.Millisecond)
	pub, err := chunker.Publish(context.Background(), nil, src, chunker.PublishOptions{ChunkSize: chunk})
	if err != nil {
		return err
	}
	res := Result{Seeders: nSeed, Leechers: nLeech, Size: size}
	// The reference runs once before and once after the swarm, and the
	// result is their mean: the machine's speed drifts, and a reference
	// taken on one side only would carry that drift into the ratio.
	var refMBps, refCPU []float64
	measureRef := func() error {
		mbps, cpu, err := quicReference(size)
		if err != nil {
			return fmt.Errorf("quic reference: %w", err)
		}
		refMBps, refCPU = append(refMBps, mbps), append(refCPU, cpu)
		return nil
	}
	if quicRef {
		if err := measureRef(); err != nil {
			return err
		}
	}

	var kids []*benchpeer.Peer
	defer func() {
		for _, k := range kids {
			k.Kill()
		}
	}()
	chunkArg := strconv.Itoa(chunk)
	for i := range nSeed + nLeech {
		role, name := "seeder", fmt.Sprintf("s%d", i)
		if i >= nSeed {
			role, name = "leecher", fmt.Sprintf("l%d", i-nSeed)
		}
		k, err := start("-role", role, "-dir", filepath.Join(work, name), "-file", src, "-id", pub.ID.String(), "-chunk", chunkArg, "-sync-every", strconv.Itoa(syncN), "-superseed="+strconv.FormatBool(superSeed), "-no-tcp="+strconv.FormatBool(noTCP), "-page-cache="+strconv.FormatBool(pageCache))
		if err != nil {
			return err
		}
		kids = append(kids, k)
	}
	addrs, err := benchpeer.Ready(kids, 10*time.Minute)
	if err != nil {
		return err
	}
	begin := time.Now()
	if err := benchpeer.Go(kids, nSeed, addrs); err != nil {
		return err
	}
	var slowest float64
	for i := nSeed; i < len(kids); i++ {
		f, err := kids[i].Expect("DONE", 30*time.Minute)
		if err != nil {
			return err
		}
		s, _ := strconv.ParseFloat(f[1], 64)
		slowest = max(slowest, s)
	}
	res.Seconds = time.Since(begin).Seconds()
	res.MBpsPerLeecher = float64(size) / 1e6 / slowest
	for i, k := range kids {
		st, err := k.Exit(time.Minute)
		if err != nil {
			return err
		}
		res.CPUSeconds += st.CPU
		if os.Getenv("SHOAL_BENCH_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "child %d (%s): %.2f CPU seconds\n", i, k.Cmd().Args[2], st.CPU)
		}
		if i < nSeed {
			res.SeederUploaded += st.Uploaded
		} else {
			res.PeakRSSLeecher = max(res.PeakRSSLeecher, st.PeakRSS)
		}
	}
	if quicRef {
		if err := measureRef(); err != nil {
			return err
		}
		mbps, cpu := (refMBps[0]+refMBps[1])/2, (refCPU[0]+refCPU[1])/2
		res.QUICRefMBps, res.QUICRefCPUSec, res.QUICRefRuns = &mbps, &cpu, refMBps
	}
	res.Verified = true
	for i := range nLeech {
		out := filepath.Join(work, fmt.Sprintf("l%d", i), "out", filepath.Base(src))
		if err := benchfile.SameFile(src, out); err != nil {
			res.Verified = false
			fmt.Fprintf(os.Stderr, "shoal-bench: leecher %d: %v\n", i, err)
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	if !res.Verified {
		return errors.New("some output differs from the source")
	}
	return nil
}
