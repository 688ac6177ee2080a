// Command bench runs shoal and libtorrent side by side on one machine, in
// one run, on the same random file in the same folder, alternating the two
// (pair i runs shoal first when i is even, libtorrent first when odd, so a
// drift of the machine's speed hits both alike), and prints per-pair
// figures, ratios, medians and spreads, then a Markdown table.
//
//	go run ./bench -scenario 1x1,4x1,1x8 -size 1GiB -pairs 5 [-rc4] [-tmp /dev/shm]
//
// shoal runs as cmd/shoal-bench (built from this tree, one process per
// peer, QUIC on 127.0.0.1). libtorrent runs as bench/ltpeer.py, one Python
// process per peer using Debian's python3-libtorrent (installed with
// apt-get if missing): plain TCP on 127.0.0.1, encryption off, or RC4
// forced on every connection with -rc4; 1 MiB pieces (-piece), v1
// torrent. Both sides' seeders have their file published or checked before
// the clock starts. Times run from the moment the leechers are told their
// peers to the last leecher's completion; CPU is user+system time of every
// process from READY to EXIT.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/internal/benchfile"
	"github.com/shoal-p2p/shoal/internal/benchpeer"
)

// python is Debian's interpreter, the one python3-libtorrent installs for
// (a python3 earlier on PATH, e.g. from pyenv, lacks the module).
const python = "/usr/bin/python3"

func main() {
	var (
		vs        = flag.String("vs", "libtorrent", "the other side (only libtorrent)")
		scenarios = flag.String("scenario", "1x1", "comma-separated SxL scenarios: S seeders, L leechers (e.g. 1x1,4x1,1x8)")
		sizeText  = flag.String("size", "256MiB", "file size (B, KiB, MiB, GiB suffixes)")
		pairs     = flag.Int("pairs", 3, "alternated pairs per scenario")
		rc4       = flag.Bool("rc4", false, "libtorrent with RC4 encryption forced on (shoal always encrypts)")
		piece     = flag.Int("piece", 1<<20, "libtorrent piece size in bytes")
		tmp       = flag.String("tmp", "", "work folder parent (default: the system temp folder)")
		keep      = flag.Bool("keep", false, "keep the work folder")
		shoalArgs = flag.String("shoal-args", "", "extra cmd/shoal-bench flags, space-separated (e.g. \"-no-tcp\" to keep shoal on QUIC, \"-superseed=false\")")
		noVerify  = flag.Bool("no-verify", false, "skip the byte-for-byte check of libtorrent's outputs (shoal-bench always checks its own)")
	)
	flag.Parse()
	if err := run(*vs, *scenarios, *sizeText, *pairs, *rc4, *piece, *tmp, *keep, !*noVerify, strings.Fields(*shoalArgs)); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// sideRun is one run of one side.
type sideRun struct {
	Seconds  float64 // GO to the last leecher's DONE
	CPU      float64 // user+system of every peer process, READY to EXIT
	Uploaded int64   // bytes uploaded by the seeders (payload)
	PeakRSS  int64   // largest leecher peak RSS
	Load     string  // 1-minute load average at the start
}

type scenario struct{ seeders, leechers int }

func (s scenario) String() string { return fmt.Sprintf("(%d,%d)", s.seeders, s.leechers) }

func parseScenarios(text string) ([]scenario, error) {
	var out []scenario
	for _, f := range strings.Split(text, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(f), "x")
		s, err1 := strconv.Atoi(a)
		l, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || s < 1 || l < 1 {
			return nil, fmt.Errorf("scenario %q: want SxL, e.g. 1x8", f)
		}
		out = append(out, scenario{s, l})
	}
	return out, nil
}

func run(vs, scenarioText, sizeText string, pairs int, rc4 bool, piece int, tmp string, keep, verify bool, shoalArgs []string) error {
	if vs != "libtorrent" {
		return fmt.Errorf("-vs %q: only libtorrent is supported", vs)
	}
	scs, err := parseScenarios(scenarioText)
	if err != nil {
		return err
	}
	size, err := benchfile.ParseSize(sizeText)
	if err != nil {
		return err
	}
	if pairs < 1 {
		return errors.New("-pairs must be at least 1")
	}
	ltVersion, err := ensureLibtorrent()
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(tmp, "shoal-vs-lt-*")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	shoalBench := filepath.Join(work, "shoal-bench")
	build := exec.Command("go", "build", "-o", shoalBench, "./cmd/shoal-bench")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/shoal-bench: %v\n%s", err, out)
	}
	commit, _ := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	src := filepath.Join(work, "file.bin")
	if err := benchfile.WriteRandom(src, size, [32]byte{'s', 'h', 'o', 'a', 'l', 'v', 's'}); err != nil {
		return err
	}
	torrent := filepath.Join(work, "file.torrent")
	if out, err := exec.Command(python, filepath.Join(root, "bench", "ltpeer.py"), "torrent", src, torrent, strconv.Itoa(piece)).CombinedOutput(); err != nil {
		return fmt.Errorf("making the torrent: %v\n%s", err, out)
	}
	enc := "plain TCP, encryption off"
	if rc4 {
		enc = "RC4 forced"
	}
	fmt.Printf("# shoal (%s) vs libtorrent %s (%s, %d KiB pieces), %s file, %d pairs, started %s, %d CPUs\n",
		strings.TrimSpace(string(commit)), ltVersion, enc, piece>>10, sizeText, pairs, time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU())
	fmt.Printf("# command: go run ./bench %s\n", strings.Join(os.Args[1:], " "))
	var tables []string
	for _, sc := range scs {
		var sh, lt []sideRun
		for i := range pairs {
			order := []string{"shoal", "libtorrent"}
			if i%2 == 1 {
				order = []string{"libtorrent", "shoal"}
			}
			for _, side := range order {
				var r sideRun
				var err error
				load := loadAvg()
				if side == "shoal" {
					r, err = runShoal(shoalBench, work, src, sc, shoalArgs)
				} else {
					r, err = runLibtorrent(root, work, src, torrent, sc, rc4, verify)
				}
				if err != nil {
					return fmt.Errorf("%s %v pair %d: %w", side, sc, i+1, err)
				}
				r.Load = load
				if side == "shoal" {
					sh = append(sh, r)
				} else {
					lt = append(lt, r)
				}
			}
			s, l := sh[i], lt[i]
			fmt.Printf("%v pair %d (%s first, load %s/%s): shoal %.2f s, libtorrent %.2f s, ratio libtorrent/shoal %.2f; CPU-s per GiB delivered shoal %.2f, libtorrent %.2f; seeder upload shoal %.2f, libtorrent %.2f copies; peak leecher RSS shoal %.0f, libtorrent %.0f MiB\n",
				sc, i+1, order[0], s.Load, l.Load, s.Seconds, l.Seconds, l.Seconds/s.Seconds,
				perGiB(s.CPU, size, sc), perGiB(l.CPU, size, sc),
				float64(s.Uploaded)/float64(size), float64(l.Uploaded)/float64(size),
				float64(s.PeakRSS)/(1<<20), float64(l.PeakRSS)/(1<<20))
		}
		tables = append(tables, table(sc, size, sh, lt))
		fmt.Println()
		fmt.Print(tables[len(tables)-1])
		fmt.Println()
	}
	return nil
}

func perGiB(cpu float64, size int64, sc scenario) float64 {
	return cpu / (float64(size) * float64(sc.leechers) / (1 << 30))
}

// table formats one scenario's pairs and their medians and spreads.
func table(sc scenario, size int64, sh, lt []sideRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| %v pair | load | shoal s | libtorrent s | ratio libtorrent/shoal | CPU-s/GiB shoal | CPU-s/GiB libtorrent | seeder upload shoal (copies) | seeder upload libtorrent (copies) | peak leecher RSS shoal / libtorrent MiB |\n", sc)
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	var col [8][]float64
	for i := range sh {
		s, l := sh[i], lt[i]
		v := [8]float64{s.Seconds, l.Seconds, l.Seconds / s.Seconds, perGiB(s.CPU, size, sc), perGiB(l.CPU, size, sc),
			float64(s.Uploaded) / float64(size), float64(l.Uploaded) / float64(size), 0}
		for j := range 7 {
			col[j] = append(col[j], v[j])
		}
		fmt.Fprintf(&b, "| %d | %s / %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f / %.0f |\n", i+1, s.Load, l.Load,
			v[0], v[1], v[2], v[3], v[4], v[5], v[6], float64(s.PeakRSS)/(1<<20), float64(l.PeakRSS)/(1<<20))
	}
	b.WriteString("| **median** (min-max) | |")
	for j := range 7 {
		fmt.Fprintf(&b, " **%.2f** (%.2f-%.2f) |", median(col[j]), slices.Min(col[j]), slices.Max(col[j]))
	}
	b.WriteString(" |\n")
	return b.String()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// runShoal runs one shoal-bench swarm on src and reads its JSON line.
func runShoal(bin, work, src string, sc scenario, extra []string) (sideRun, error) {
	args := append([]string{"-src", src, "-tmp", work,
		"-seeders", strconv.Itoa(sc.seeders), "-leechers", strconv.Itoa(sc.leechers)}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return sideRun{}, fmt.Errorf("shoal-bench: %v", err)
	}
	var res struct {
		Seconds        float64 `json:"seconds"`
		CPUSeconds     float64 `json:"cpu_seconds"`
		SeederUploaded int64   `json:"seeder_uploaded"`
		PeakRSSLeecher int64   `json:"peak_rss_leecher"`
		Verified       bool    `json:"verified"`
	}
	if err := json.Unmarshal(lastLine(out), &res); err != nil {
		return sideRun{}, fmt.Errorf("shoal-bench printed %q: %v", out, err)
	}
	if !res.Verified {
		return sideRun{}, errors.New("shoal-bench: output differs from the source")
	}
	return sideRun{Seconds: res.Seconds, CPU: res.CPUSeconds, Uploaded: res.SeederUploaded, PeakRSS: res.PeakRSSLeecher}, nil
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// runLibtorrent runs one libtorrent swarm: seeders on src's folder,
// leechers into fresh folders under work.
func runLibtorrent(root, work, src, torrent string, sc scenario, rc4, verify bool) (sideRun, error) {
	dir, err := os.MkdirTemp(work, "lt-*")
	if err != nil {
		return sideRun{}, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(root, "bench", "ltpeer.py")
	var peers []*benchpeer.Peer
	defer func() {
		for _, p := range peers {
			p.Kill()
		}
	}()
	for i := range sc.seeders + sc.leechers {
		role, folder := "seeder", filepath.Dir(src)
		if i >= sc.seeders {
			role, folder = "leecher", filepath.Join(dir, fmt.Sprintf("l%d", i-sc.seeders))
			if err := os.Mkdir(folder, 0o755); err != nil {
				return sideRun{}, err
			}
		}
		args := []string{script, role, torrent, folder, "127.0.0.1"}
		if rc4 {
			args = append(args, "--rc4")
		}
		cmd := exec.Command(python, args...)
		p, err := benchpeer.Start(fmt.Sprintf("peer %v", cmd.Args), cmd)
		if err != nil {
			return sideRun{}, err
		}
		peers = append(peers, p)
	}
	return Swarm(peers, sc.seeders, func() error {
		if !verify {
			return nil
		}
		for i := range sc.leechers {
			out := filepath.Join(dir, fmt.Sprintf("l%d", i), filepath.Base(src))
			if err := benchfile.SameFile(src, out); err != nil {
				return fmt.Errorf("libtorrent leecher %d: %w", i, err)
			}
		}
		return nil
	})
}

// Swarm waits for every peer's READY, sends each leecher (peers[nSeed:])
// GO with the addresses of all the others, times the slowest DONE, then
// collects STATS; check runs before EXIT (while outputs are complete).
func Swarm(peers []*benchpeer.Peer, nSeed int, check func() error) (sideRun, error) {
	addrs, err := benchpeer.Ready(peers, time.Hour)
	if err != nil {
		return sideRun{}, err
	}
	begin := time.Now()
	if err := benchpeer.Go(peers, nSeed, addrs); err != nil {
		return sideRun{}, err
	}
	for i := nSeed; i < len(peers); i++ {
		if _, err := peers[i].Expect("DONE", time.Hour); err != nil {
			return sideRun{}, err
		}
	}
	r := sideRun{Seconds: time.Since(begin).Seconds()}
	for i, p := range peers {
		st, err := p.Exit(time.Minute)
		if err != nil {
			return r, err
		}
		r.CPU += st.CPU
		if i < nSeed {
			r.Uploaded += st.Uploaded
		} else {
			r.PeakRSS = max(r.PeakRSS, st.PeakRSS)
		}
	}
	return r, check()
}

// ensureLibtorrent returns libtorrent's version, installing Debian's
// python3-libtorrent first if the module is missing.
func ensureLibtorrent() (string, error) {
	probe := func() (string, error) {
		out, err := exec.Command(python, "-c", "import libtorrent; print(libtorrent.__version__)").Output()
		return strings.TrimSpace(string(out)), err
	}
	if v, err := probe(); err == nil {
		return v, nil
	}
	fmt.Fprintln(os.Stderr, "bench: installing python3-libtorrent")
	if exec.Command("apt-get", "install", "-y", "python3-libtorrent").Run() != nil {
		if out, err := exec.Command("apt-get", "update").CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get update: %v\n%s", err, out)
		}
		if out, err := exec.Command("apt-get", "install", "-y", "python3-libtorrent").CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get install python3-libtorrent: %v\n%s", err, out)
		}
	}
	v, err := probe()
	if err != nil {
		return "", fmt.Errorf("%s cannot import libtorrent even after installing python3-libtorrent: %v", python, err)
	}
	return v, nil
}

// moduleRoot is the folder holding go.mod, found from this source file
// (go run) or the working directory.
func moduleRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, d := range starts {
		for ; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "bench", "ltpeer.py")); err == nil {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("cannot find the shoal source tree (run from inside it: go run ./bench)")
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
