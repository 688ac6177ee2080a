package chunker

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/shoal-p2p/shoal/internal/cputime"
)

// benchPublishBytes is the publish benchmark's input size: 64 MiB by
// default, SHOAL_BENCH_PUBLISH_BYTES to override (1073741824 for the 1 GiB
// figure in docs/chunker.md).
func benchPublishBytes(b *testing.B) int64 {
	if s := os.Getenv("SHOAL_BENCH_PUBLISH_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatalf("SHOAL_BENCH_PUBLISH_BYTES: %v", err)
		}
		return n
	}
	return 64 << 20
}

var benchFile struct {
	once sync.Once
	path string
	size int64
}

// benchInput writes the benchmark file once per process in the OS temp
// folder; TestMain removes it.
func benchInput(b *testing.B) string {
	size := benchPublishBytes(b)
	benchFile.once.Do(func() {
		dir, err := os.MkdirTemp("", "shoal-chunker-bench")
		if err != nil {
			b.Fatal(err)
		}
		benchFile.path, benchFile.size = filepath.Join(dir, "input"), size
		f, err := os.Create(benchFile.path)
		if err != nil {
			b.Fatal(err)
		}
		block := xof("bench", 4<<20)
		for off := int64(0); off < size; off += int64(len(block)) {
			if _, err := f.Write(block[:min(int64(len(block)), size-off)]); err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
	})
	return benchFile.path
}

func BenchmarkPublish(b *testing.B) {
	path := benchInput(b)
	for _, tc := range []struct {
		name  string
		store bool
		opts  PublishOptions
	}{
		{"16+4", true, PublishOptions{}},
		{"16+4/nostore", false, PublishOptions{}},
		{"nocoding/nostore", false, PublishOptions{NoParity: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var st *Store
			if tc.store {
				st = openStore(b)
			}
			b.SetBytes(benchFile.size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Publish(context.Background(), st, path, tc.opts); err != nil {
					b.Fatal(err)
				}
				if st != nil {
					b.StopTimer()
					removeAll(b, st)
					b.StartTimer()
				}
			}
		})
	}
}

// BenchmarkBLAKE3 is the baseline for publish: hashing 256 KiB chunks of a
// 64 MiB buffer in memory, on one goroutine and on two (disjoint halves).
func BenchmarkBLAKE3(b *testing.B) {
	const chunk = DefaultChunkSize
	buf := xof("raw", 64<<20)
	for _, workers := range []int{1, 2} {
		b.Run(strconv.Itoa(workers)+"core", func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				var wg sync.WaitGroup
				per := len(buf) / workers
				for w := range workers {
					part := buf[w*per : (w+1)*per]
					wg.Go(func() {
						for off := 0; off < len(part); off += chunk {
							blake3.Sum256(part[off : off+chunk])
						}
					})
				}
				wg.Wait()
			}
		})
	}
}

// BenchmarkDecodeStripe rebuilds m missing data chunks of a full 16+4 stripe
// of 256 KiB chunks; bytes are the stripe's data bytes.
func BenchmarkDecodeStripe(b *testing.B) {
	m := &Manifest{Name: "b", Size: 16 * DefaultChunkSize, ChunkSize: DefaultChunkSize, DataShards: 16, ParityShards: 4, Hash: HashBLAKE3}
	content := xof("decode", int(m.Size))
	chunks := splitChunks(b, m, content)
	work := make([][]byte, len(chunks))
	b.SetBytes(m.Size)
	b.ReportAllocs()
	for b.Loop() {
		copy(work, chunks)
		for j := range m.ParityShards {
			work[j*3] = nil // data chunks 0, 3, 6, 9
		}
		if err := DecodeStripe(m, 0, work); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMerkleRoot(b *testing.B) {
	hs := leafHashes(65536 * 5 / 4)
	b.SetBytes(int64(len(hs)) * 32)
	b.ReportAllocs()
	for b.Loop() {
		MerkleRoot(hs)
	}
}

// BenchmarkWriteChunk verifies and writes 256 KiB chunks into a download,
// including its periodic syncs (default SyncEvery); creating the download is
// not timed.
// BenchmarkWriteChunk writes 256 KiB chunks from one goroutine, with
// direct I/O (the default where the file system has it) and through the
// page cache.
func BenchmarkWriteChunk(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchWriteChunk(b, DownloadOptions{}) })
	b.Run("pagecache", func(b *testing.B) { benchWriteChunk(b, DownloadOptions{PageCache: true}) })
}

func benchWriteChunk(b *testing.B, opts DownloadOptions) {
	const n = 256
	dir := b.TempDir()
	path := filepath.Join(dir, "f")
	content := xof("wc", n*DefaultChunkSize)
	writeFile(b, path, content, 0o644)
	p := publish(b, nil, path, PublishOptions{NoParity: true})
	chunks := splitChunks(b, p.Manifest, content)
	st := openStore(b)
	b.SetBytes(DefaultChunkSize)
	b.ReportAllocs()
	b.ResetTimer()
	var dl *Download
	for i := range b.N {
		if i%n == 0 {
			b.StopTimer()
			if dl != nil {
				dl.Close()
				st.Remove(p.ID)
				os.Remove(filepath.Join(dir, "out", "f"))
			}
			var err error
			if dl, err = st.CreateDownload(p.Manifest, p.Leaves, filepath.Join(dir, "out"), opts); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		if err := dl.WriteChunk(i%n, chunks[i%n]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	dl.Close()
}

// hashRaw2 hashes size bytes (the 64 MiB buffer over and over) in 256 KiB
// chunks on two goroutines.
func hashRaw2(buf []byte, size int64) {
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			const chunk = DefaultChunkSize
			half := size / 2
			for done := int64(0); done < half; {
				for off := w * chunk; off < len(buf) && done < half; off += 2 * chunk {
					blake3.Sum256(buf[off : off+chunk])
					done += chunk
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkPublishVsBLAKE3 measures, side by side in each iteration, raw
// 2-core BLAKE3 over as many bytes as the input (in memory, 256 KiB chunks)
// and Publish of the input, and reports both throughputs, their ratio, and
// the CPU time per input byte of each (less sensitive to other load on the
// machine). ns/op covers both halves.
func BenchmarkPublishVsBLAKE3(b *testing.B) {
	path := benchInput(b)
	buf := xof("raw", 64<<20)
	for _, tc := range []struct {
		name  string
		store bool
		opts  PublishOptions
	}{
		{"16+4", true, PublishOptions{}},
		{"16+4/nostore", false, PublishOptions{}},
		{"16+4/nostore/pread", false, PublishOptions{}},
		{"nocoding/nostore", false, PublishOptions{NoParity: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var st *Store
			if tc.store {
				st = openStore(b)
			}
			publishNoMap = strings.HasSuffix(tc.name, "/pread")
			defer func() { publishNoMap = false }()
			size := benchFile.size
			var rawT, pubT, rawC, pubC time.Duration
			for b.Loop() {
				c0, t0 := cputime.Process(), time.Now()
				hashRaw2(buf, size)
				c1, t1 := cputime.Process(), time.Now()
				if _, err := Publish(context.Background(), st, path, tc.opts); err != nil {
					b.Fatal(err)
				}
				c2, t2 := cputime.Process(), time.Now()
				rawT, pubT, rawC, pubC = rawT+t1.Sub(t0), pubT+t2.Sub(t1), rawC+c1-c0, pubC+c2-c1
				if st != nil {
					removeAll(b, st) // untimed: the next publish starts from an empty store
				}
			}
			n := float64(b.N) * float64(size)
			b.ReportMetric(n/rawT.Seconds()/1e6, "raw-MB/s")
			b.ReportMetric(n/pubT.Seconds()/1e6, "publish-MB/s")
			b.ReportMetric(rawT.Seconds()/pubT.Seconds(), "ratio")
			b.ReportMetric(float64(rawC.Nanoseconds())/n, "raw-cpu-ns/B")
			b.ReportMetric(float64(pubC.Nanoseconds())/n, "publish-cpu-ns/B")
		})
	}
}

func removeAll(b *testing.B, st *Store) {
	items, err := st.List()
	if err != nil {
		b.Fatal(err)
	}
	for _, it := range items {
		if err := st.Remove(it.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishCeiling measures, side by side in each iteration, the
// work a 16+4 publish into a store cannot avoid, each part on two
// goroutines over as many input bytes as BenchmarkPublishVsBLAKE3
// publishes: raw BLAKE3 (256 KiB chunks of a 64 MiB in-memory buffer, as
// there); "code", the stripes of that buffer hashed, Reed-Solomon encoded
// (the encoder Publish uses) and their parity hashed, as Publish does but
// from memory and without its bookkeeping; and "write", that parity (a
// quarter of the input) written into a fresh preallocated file in 1 MiB
// writes, as Publish writes its parity file. It reports the CPU time of
// each per input byte, "rs" = code - 1.25 raw (the encode's share), and the
// CPU ratios raw/code ("ceiling-nostore") and raw/(code+write) ("ceiling"):
// what a publish doing only this work would reach.
func BenchmarkPublishCeiling(b *testing.B) {
	size := benchPublishBytes(b)
	buf := xof("raw", 64<<20)
	const k, par, cs = DefaultDataShards, DefaultParityShards, DefaultChunkSize
	enc, err := rsFor(k, par)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	parity := [2][]byte{make([]byte, par*cs), make([]byte, par*cs)}
	stripes := int(size / (k * cs))
	var rawC, codeC, wC time.Duration
	for i := 0; b.Loop(); i++ {
		c0 := cputime.Process()
		hashRaw2(buf, size)
		c1 := cputime.Process()
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Go(func() {
				shards := make([][]byte, k+par)
				for s := w; s < stripes; s += 2 {
					off := s * k * cs % len(buf)
					for j := range k {
						shards[j] = buf[off+j*cs : off+(j+1)*cs]
						blake3.Sum256(shards[j])
					}
					for j := range par {
						shards[k+j] = parity[w][j*cs : (j+1)*cs]
					}
					if err := enc.Encode(shards); err != nil {
						panic(err)
					}
					for j := range par {
						blake3.Sum256(shards[k+j])
					}
				}
			})
		}
		wg.Wait()
		c2 := cputime.Process()
		f, err := createSized(filepath.Join(dir, "parity"+strconv.Itoa(i)), int64(stripes)*par*cs)
		if err != nil {
			b.Fatal(err)
		}
		c3 := cputime.Process()
		for w := range 2 {
			wg.Go(func() {
				for s := w; s < stripes; s += 2 {
					if _, err := f.WriteAt(parity[w], int64(s)*par*cs); err != nil {
						panic(err)
					}
				}
			})
		}
		wg.Wait()
		c4 := cputime.Process()
		f.Close()
		os.Remove(f.Name()) // untimed, as BenchmarkPublishVsBLAKE3 removes the item
		rawC, codeC, wC = rawC+c1-c0, codeC+c2-c1, wC+c4-c3
	}
	n := float64(b.N) * float64(size)
	raw, code, w := float64(rawC.Nanoseconds())/n, float64(codeC.Nanoseconds())/n, float64(wC.Nanoseconds())/n
	b.ReportMetric(raw, "raw-cpu-ns/B")
	b.ReportMetric(code, "code-cpu-ns/B")
	b.ReportMetric(code-1.25*raw, "rs-cpu-ns/B")
	b.ReportMetric(w, "write-cpu-ns/B")
	b.ReportMetric(raw/code, "ceiling-nostore")
	b.ReportMetric(raw/(code+w), "ceiling")
}
