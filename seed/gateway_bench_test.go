package seed

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkGatewayTTFB measures the time to the first body byte of a range
// read through the gateway of a node that holds nothing of the content,
// from a publisher on another node (named by a peer hint, as in a link):
//
//   - last-MiB-256MiB-capped: the last MiB of a 256 MiB file, the reading
//     node capped at 10 MB/s (the whole file would take about 27 s);
//   - last-MiB-256MiB-capped-during-get: the same while a get of the whole
//     file runs on the reading node (started 1 s before the read): the
//     reader's chunks go first through the cap and preempt the get's
//     requests;
//   - first-MiB-1GiB: the first MiB of a 1 GiB file, no cap.
//
// Each iteration starts a fresh reading node. Metrics: hdr-ms (response
// headers: the node found the content and fetched its manifest and leaf
// layer), ttfb-ms (first body byte: the first chunk verified) and mib-ms
// (the whole MiB). Run it (publishing hashes 1.25 GiB
// first) with:
//
//	go test -run '^$' -bench GatewayTTFB -benchtime 5x ./seed
func BenchmarkGatewayTTFB(b *testing.B) {
	cases := []struct {
		name   string
		size   int64
		rate   int64
		offset func(size int64) int64
		get    bool
	}{
		{"last-MiB-256MiB-capped", 256 << 20, 10_000_000, func(s int64) int64 { return s - 1<<20 }, false},
		{"last-MiB-256MiB-capped-during-get", 256 << 20, 10_000_000, func(s int64) int64 { return s - 1<<20 }, true},
		{"first-MiB-1GiB", 1 << 30, 0, func(int64) int64 { return 0 }, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			pub, err := Start(Config{DataDir: b.TempDir(), Listen: "127.0.0.1:0", API: "off", Gateway: "off"})
			if err != nil {
				b.Fatal(err)
			}
			defer pub.Close()
			src := filepath.Join(b.TempDir(), "big.bin")
			if err := writeRandomFile(src, tc.size); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
			if err != nil {
				b.Fatal(err)
			}
			hint := pub.PeerID().String() + "@" + pub.Addr().String()
			off := tc.offset(tc.size)
			var ttfb, whole, hdr time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				g, err := Start(Config{DataDir: b.TempDir(), Listen: "127.0.0.1:0", API: "off", Gateway: "127.0.0.1:0", DownloadLimit: tc.rate})
				if err != nil {
					b.Fatal(err)
				}
				gctx, stopGet := context.WithCancel(ctx)
				getDone := make(chan struct{})
				if tc.get {
					go func() {
						defer close(getDone)
						g.Get(gctx, GetRequest{Link: p.Link, Out: b.TempDir()}, nil)
					}()
					time.Sleep(time.Second) // a benchmark, not a test: let the get fill its pipeline
				} else {
					close(getDone)
				}
				cl := &http.Client{Transport: &http.Transport{}}
				req, _ := http.NewRequest("GET", "http://"+g.GatewayAddr()+"/shoal/"+p.Item.ID+"?peer="+hint, nil)
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+1<<20-1))
				b.StartTimer()
				t0 := time.Now()
				resp, err := cl.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				th := time.Now() // headers: the manifest and leaves are known
				buf := make([]byte, 64<<10)
				n, err := io.ReadAtLeast(resp.Body, buf, 1)
				t1 := time.Now()
				if err != nil {
					b.Fatalf("first byte: %v", err)
				}
				rest, err := io.Copy(io.Discard, resp.Body)
				t2 := time.Now()
				b.StopTimer()
				resp.Body.Close()
				if err != nil || int64(n)+rest != 1<<20 || resp.StatusCode != 206 {
					b.Fatalf("status %d, %d bytes, %v", resp.StatusCode, int64(n)+rest, err)
				}
				ttfb += t1.Sub(t0)
				hdr += th.Sub(t0)
				whole += t2.Sub(t0)
				cl.CloseIdleConnections()
				stopGet()
				<-getDone
				g.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(ttfb.Microseconds())/1000/float64(b.N), "ttfb-ms")
			b.ReportMetric(float64(whole.Microseconds())/1000/float64(b.N), "mib-ms")
			b.ReportMetric(float64(hdr.Microseconds())/1000/float64(b.N), "hdr-ms")
		})
	}
}

// writeRandomFile writes size pseudo-random bytes to path.
func writeRandomFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 4<<20)
	var x uint64 = 0x9e3779b97f4a7c15
	for done := int64(0); done < size; {
		for i := 0; i+8 <= len(buf); i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			buf[i], buf[i+1], buf[i+2], buf[i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
			buf[i+4], buf[i+5], buf[i+6], buf[i+7] = byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56)
		}
		n := min(int64(len(buf)), size-done)
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		done += n
	}
	return f.Close()
}
