//go:build linux

package drill

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
)

// TestFleet is a benchmark, not a check: one publisher and N hosts, every
// link capped in both directions, shoal and libtorrent (Debian's
// python3-libtorrent through bench/ltpeer.py, plain TCP, encryption off)
// alternated in pairs on fresh namespaces with the same caps and the same
// file. It reports the slowest host's time against the physical bound
//
//	D_min = max(F/u_s, F/d_min, N*F/(u_s + sum of u_i))
//
// (Kumar and Ross, 2006) and the copies of the file the publisher put on
// its wire (eth0 transmit bytes, headers included, the same measure for
// both) and in payload. It runs only under SHOAL_FLEET=1:
//
//	SHOAL_FLEET=1 go test -run TestFleet -v -timeout 60m ./internal/drill
//
// SHOAL_FLEET_HOSTS (8), SHOAL_FLEET_MBIT (50), SHOAL_FLEET_SIZE_MIB (256)
// and SHOAL_FLEET_PAIRS (2) change the setting; SHOAL_FLEET_ONLY=shoal
// (or libtorrent, or a list such as shoal,shoal-old) runs those sides only. SHOAL_FLEET_OLD_BIN=<a shoal binary>
// adds a third side, "shoal-old", run with that binary (build it from an
// earlier commit to measure a change side by side); SHOAL_FLEET_CONFIG and
// SHOAL_FLEET_OLD_CONFIG give the two shoal sides a config file (JSON, as
// for "shoal --config"), and SHOAL_FLEET_OLD_CONFIG alone adds "shoal-old"
// with the tree's binary, to compare settings. SHOAL_FLEET_QUICREF=1 adds
// "quic-ref": plain quic-go (cmd/shoal-bench's reference, one stream of the
// file's size) from the publisher to host 1, the transport alone on the
// same caps.
func TestFleet(t *testing.T) {
	if os.Getenv("SHOAL_FLEET") != "1" {
		t.Skip("a benchmark of several minutes: run with SHOAL_FLEET=1")
	}
	hosts := envInt(t, "SHOAL_FLEET_HOSTS", 8)
	mbit := envInt(t, "SHOAL_FLEET_MBIT", 50)
	size := int64(envInt(t, "SHOAL_FLEET_SIZE_MIB", 256)) * mib
	pairs := envInt(t, "SHOAL_FLEET_PAIRS", 2)
	only := os.Getenv("SHOAL_FLEET_ONLY")
	rate := int64(mbit) * 1e6
	// Every host (publisher included) uploads and downloads at rate.
	us := float64(rate) / 8
	dmin := math.Max(float64(size)/us, float64(hosts)*float64(size)/(us*float64(hosts+1)))
	t.Logf("FLEET %d hosts + publisher, %d MiB, %d Mbit/s up and down on every link: D_min %.1f s", hosts, size/mib, mbit, dmin)

	oldBin, oldConf, conf := os.Getenv("SHOAL_FLEET_OLD_BIN"), os.Getenv("SHOAL_FLEET_OLD_CONFIG"), os.Getenv("SHOAL_FLEET_CONFIG")
	withOld := oldBin != "" || oldConf != ""
	quicRef := os.Getenv("SHOAL_FLEET_QUICREF") == "1"
	if oldBin == "" {
		oldBin = Binary(t)
	}
	var sides []string
	for _, s := range []string{"shoal", "shoal-old", "quic-ref", "libtorrent"} {
		if (only == "" || slices.Contains(strings.Split(only, ","), s)) && (s != "shoal-old" || withOld) && (s != "quic-ref" || quicRef) {
			sides = append(sides, s)
		}
	}
	if slices.Contains(sides, "libtorrent") {
		if why := libtorrentMissing(); why != "" {
			t.Skip(why)
		}
	}
	res := map[string][]fleetRun{}
	for i := range pairs {
		order := slices.Clone(sides)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, side := range order {
			var r fleetRun
			switch side {
			case "shoal":
				r = fleetShoal(t, Binary(t), conf, hosts, size, rate, uint64(i+100))
			case "shoal-old":
				r = fleetShoal(t, oldBin, oldConf, hosts, size, rate, uint64(i+100))
			case "quic-ref":
				r = fleetQUICRef(t, hosts, size, rate)
			default:
				r = fleetLibtorrent(t, hosts, size, rate, uint64(i+100))
			}
			res[side] = append(res[side], r)
			t.Logf("FLEET pair %d %s: slowest host %.1f s = %.2fx D_min (hosts %v); publisher sent %.2f copies on the wire, %.2f in payload; load %s",
				i+1, side, r.slowest, r.slowest/dmin, r.times, r.wire/float64(size), r.payload/float64(size), r.load)
		}
	}
	for _, side := range sides {
		var x, w []float64
		for _, r := range res[side] {
			x, w = append(x, r.slowest/dmin), append(w, r.wire/float64(size))
		}
		slices.Sort(x)
		slices.Sort(w)
		t.Logf("FLEET %s over %d runs: slowest host %.2f-%.2fx D_min, publisher wire copies %.2f-%.2f", side, len(x), x[0], x[len(x)-1], w[0], w[len(w)-1])
	}
}

type fleetRun struct {
	slowest float64   // seconds, slowest host
	times   []float64 // seconds, every host
	wire    float64   // bytes the publisher's eth0 sent
	payload float64   // content bytes the publisher served
	load    string
	samples []fleetSample
}

// fleetSample is the publisher's state at one moment of a run.
type fleetSample struct {
	at       float64 // seconds since the hosts were started
	tx       float64 // bytes its eth0 sent since the first sample
	distinct int64   // chunks it sent at least once (super-seeding)
}

// samplePublisher reads the publisher's eth0 counter and super-seeding
// counters every 500 ms until stop is closed.
func samplePublisher(t *testing.T, h *Host, pub *Node, start time.Time, stop <-chan struct{}) []fleetSample {
	var out []fleetSample
	tx0 := txBytes(t, h)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		s := fleetSample{at: time.Since(start).Seconds(), tx: txBytes(t, h) - tx0}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if m, err := pub.Metrics(ctx); err == nil {
			s.distinct = m[`shoal_superseed_total{decision="distinct"}`]
		}
		cancel()
		out = append(out, s)
		select {
		case <-stop:
			return out
		case <-tick.C:
		}
	}
}

// waitDataDone polls n's status every 250 ms until its download has
// verified every content byte, and returns when (seconds since start; 0
// if stop came first).
func waitDataDone(n *Node, start time.Time, stop <-chan struct{}) float64 {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := n.LiveStatus(ctx)
		cancel()
		if err == nil {
			for _, d := range st.Downloads {
				if d.Total > 0 && d.Done >= d.Total {
					return time.Since(start).Seconds()
				}
			}
		}
		select {
		case <-stop:
			return 0
		case <-tick.C:
		}
	}
}

func fmtTimes(x []float64) string {
	var b strings.Builder
	for i, v := range x {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f", v)
	}
	return b.String()
}

// logUplink reports the publisher's uplink use: the time to its first
// busy second, its busy share while no host had finished and after, the
// time its distinct chunks reached every data chunk, and its rate per
// 2 s.
func logUplink(t *testing.T, ss []fleetSample, rate int64, times []float64) {
	if len(ss) < 2 {
		return
	}
	full := float64(rate) / 8
	first := slices.Min(times)
	var line strings.Builder
	var busyBefore, spanBefore, busyAfter, spanAfter float64
	start, allOut := -1.0, -1.0
	var maxDistinct int64
	for _, s := range ss {
		maxDistinct = max(maxDistinct, s.distinct)
	}
	for i := 1; i < len(ss); i++ {
		a, b := ss[i-1], ss[i]
		dt := b.at - a.at
		u := (b.tx - a.tx) / dt / full
		if start < 0 && u > 0.5 {
			start = a.at
		}
		if allOut < 0 && b.distinct >= maxDistinct && maxDistinct > 0 {
			allOut = b.at
		}
		if start >= 0 {
			if b.at <= first {
				busyBefore, spanBefore = busyBefore+min(u, 1)*dt, spanBefore+dt
			} else {
				busyAfter, spanAfter = busyAfter+min(u, 1)*dt, spanAfter+dt
			}
		}
	}
	for i := 0; i+4 < len(ss); i += 4 {
		a, b := ss[i], ss[i+4]
		fmt.Fprintf(&line, " %.0f", 100*(b.tx-a.tx)/(b.at-a.at)/full)
	}
	t.Logf("FLEET shoal publisher uplink: first half-busy 0.5 s at %.1f s; busy %.0f%% until the first host finished (%.1f s), %.0f%% after; %d chunks sent once by %.1f s; %% of the cap per 2 s:%s",
		start, 100*busyBefore/max(spanBefore, 1e-9), first, 100*busyAfter/max(spanAfter, 1e-9), maxDistinct, allOut, line.String())
}

// metricDelta formats the labelled series of name, after minus before,
// sorted by label.
func metricDelta(before, after map[string]int64, name string) string {
	var keys []string
	for k := range after {
		if strings.HasPrefix(k, name+"{") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		label := k[len(name)+1 : len(k)-1]
		if _, v, ok := strings.Cut(label, "="); ok {
			label = strings.Trim(v, `"`)
		}
		fmt.Fprintf(&b, " %s=%d", label, after[k]-before[k])
	}
	return b.String()
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// fleetNet makes a publisher and hosts with every link capped at rate.
func fleetNet(t *testing.T, hosts int, rate int64) (*Net, []*Host) {
	nt := New(t, hosts+1)
	hs := nt.Hosts()
	for _, h := range hs {
		if err := h.Shape(rate, rate); err != nil {
			t.Fatal(err)
		}
	}
	return nt, hs
}

// txBytes is what the host's eth0 has sent so far.
func txBytes(t *testing.T, h *Host) float64 {
	out, err := exec.Command("ip", "-n", h.NS, "-j", "-s", "link", "show", "eth0").Output()
	if err != nil {
		t.Fatalf("ip -s link in %s: %v", h.NS, err)
	}
	var links []struct {
		Stats struct {
			TX struct {
				Bytes float64 `json:"bytes"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -s link in %s printed %q: %v", h.NS, out, err)
	}
	return links[0].Stats.TX.Bytes
}

func load() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func fleetShoal(t *testing.T, bin, conf string, hosts int, size, rate int64, seed uint64) fleetRun {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir := runDir(t)
	defer os.RemoveAll(dir) // after nt.Close has stopped the nodes
	nt, hs := fleetNet(t, hosts, rate)
	defer nt.Close()
	// SHOAL_FLEET_SYSCTL=name=value,... sets sysctls in every namespace
	// of the shoal sides (an experiment: e.g. net.ipv4.tcp_notsent_lowat).
	if v := os.Getenv("SHOAL_FLEET_SYSCTL"); v != "" {
		for _, h := range hs {
			for kv := range strings.SplitSeq(v, ",") {
				if out, err := exec.Command("ip", "netns", "exec", h.NS, "sysctl", "-w", kv).CombinedOutput(); err != nil {
					t.Fatalf("sysctl %s in %s: %v: %s", kv, h.NS, err, out)
				}
			}
		}
	}
	src := filepath.Join(dir, "src", "fleet.bin")
	sum := writeRandom(t, src, size, seed)
	var env []string
	if conf != "" {
		env = []string{"SHOAL_CONFIG=" + conf}
	}
	pub := StartNode(t, bin, hs[0], dir, NodeOptions{Env: env})
	p, err := pub.Publish(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*Node, hosts)
	for i := range hosts {
		nodes[i] = StartNode(t, bin, hs[i+1], dir, NodeOptions{Bootstrap: []string{pub.Addr()}, Env: env})
	}
	r := fleetRun{times: make([]float64, hosts), load: load()}
	tx0 := txBytes(t, hs[0])
	st0, err := pub.LiveStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pm0, err := pub.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, hosts)
	paths := make([]string, hosts)
	var wg sync.WaitGroup
	start := time.Now()
	stopSampling := make(chan struct{})
	samples := make(chan []fleetSample, 1)
	go func() { samples <- samplePublisher(t, hs[0], pub, start, stopSampling) }()
	dataDone := make([]float64, hosts) // when each host's content was verified (before parity and install)
	var sampled sync.WaitGroup
	for i, n := range nodes {
		sampled.Go(func() { dataDone[i] = waitDataDone(n, start, stopSampling) })
	}
	for i, n := range nodes {
		wg.Go(func() {
			it, err := n.Get(ctx, p.Link, filepath.Join(n.Home, "out"), 60*time.Second)
			r.times[i], errs[i], paths[i] = time.Since(start).Seconds(), err, it.Path
		})
	}
	wg.Wait()
	close(stopSampling)
	r.samples = <-samples
	sampled.Wait()
	for i := range dataDone {
		if dataDone[i] == 0 {
			dataDone[i] = r.times[i]
		}
	}
	t.Logf("FLEET shoal hosts' content verified at %s s; Get returned at %s s (after installing; parity is rebuilt after)", fmtTimes(dataDone), fmtTimes(r.times))
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shoal host %d: %v", i+1, err)
		}
	}
	r.wire = txBytes(t, hs[0]) - tx0
	st, err := pub.LiveStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.payload = float64(st.BytesUp - st0.BytesUp)
	r.slowest = slices.Max(r.times)
	pm, err := pub.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FLEET shoal publisher super-seeding: %s", metricDelta(pm0, pm, "shoal_superseed_total"))
	t.Logf("FLEET shoal publisher chunks sent again, by why: %s", metricDelta(pm0, pm, "shoal_superseed_repeats_total"))
	logUplink(t, r.samples, rate, r.times)
	// What the hosts took in: chunks fetched against the data chunks they
	// needed (more: parity), bytes received against the chunks' bytes
	// (more: duplicates or cancelled requests).
	var fetched, received, fromFull int64
	reqs := map[string]int64{}
	for _, n := range nodes {
		m, err := n.Metrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fetched += m["shoal_chunks_verified_total"]
		received += m["shoal_bytes_down_total"]
		fromFull += m["shoal_chunks_from_full_total"]
		for k, v := range m {
			if strings.HasPrefix(k, "shoal_chunk_requests_total{") {
				reqs[k] += v
			}
		}
	}
	t.Logf("FLEET shoal hosts' requests (all hosts): %s; chunks verified from peers holding everything: %d", metricDelta(nil, reqs, "shoal_chunk_requests_total"), fromFull)
	cs := int64(chunker.AutoChunkSize(size)) // what shoal publish uses
	dataChunks := (size + cs - 1) / cs
	t.Logf("FLEET shoal hosts: %d chunks fetched for %d data chunks each (%.3f per data chunk), %.3f copies received per host",
		fetched, dataChunks, float64(fetched)/float64(int64(hosts)*dataChunks), float64(received)/float64(int64(hosts)*size))
	for i := range hosts {
		sameBytes(t, fmt.Sprintf("shoal host %d", i+1), paths[i], sum)
	}
	return r
}

// runDir makes a folder for one run's files (the caller removes it when
// the run ends; the test's TempDir, if not): a run leaves
// about 2.5 GiB (the file on 9 hosts, parity, stores), and t.TempDir keeps
// every run's until the test ends, filling the disk after about 8 runs.
func runDir(t *testing.T) string {
	dir, err := os.MkdirTemp(t.TempDir(), "run")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// ltScript is bench/ltpeer.py in this source tree.
func ltScript() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "bench", "ltpeer.py")
}

const ltPython = "/usr/bin/python3"

// libtorrentMissing installs python3-libtorrent if needed and says why it
// cannot run, or "".
func libtorrentMissing() string {
	probe := func() bool { return exec.Command(ltPython, "-c", "import libtorrent").Run() == nil }
	if probe() {
		return ""
	}
	if exec.Command("apt-get", "install", "-y", "python3-libtorrent").Run() != nil {
		exec.Command("apt-get", "update").Run()
		exec.Command("apt-get", "install", "-y", "python3-libtorrent").Run()
	}
	if !probe() {
		return "libtorrent side needs Debian's python3-libtorrent, which could not be installed"
	}
	return ""
}

// ltPeer is one bench/ltpeer.py process in a host.
type ltPeer struct {
	in    io.WriteCloser
	lines chan []string
}

func startLTPeer(t *testing.T, h *Host, args ...string) *ltPeer {
	return startLTPeerCmd(t, h.Command(ltPython, append([]string{ltScript()}, args...)...))
}

// startLTPeerCmd starts c (a process speaking the peer line protocol) and
// reads its output lines.
func startLTPeerCmd(t *testing.T, c *exec.Cmd) *ltPeer {
	c.Stderr = os.Stderr
	in, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	p := &ltPeer{in: in, lines: make(chan []string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- strings.Fields(sc.Text())
		}
		close(p.lines)
		c.Wait()
	}()
	return p
}

// expect waits for a line starting with word (at least two fields) and
// returns its fields.
func (p *ltPeer) expect(word string, timeout time.Duration) ([]string, error) {
	deadline := time.After(timeout)
	for {
		select {
		case f, ok := <-p.lines:
			if !ok {
				return nil, fmt.Errorf("libtorrent peer exited while waiting for %s", word)
			}
			if len(f) > 1 && f[0] == word {
				return f, nil
			}
			if len(f) > 0 && f[0] == "FAILED" {
				return nil, fmt.Errorf("libtorrent peer: %v", f)
			}
		case <-deadline:
			return nil, fmt.Errorf("libtorrent peer: no %s within %v", word, timeout)
		}
	}
}

func fleetLibtorrent(t *testing.T, hosts int, size, rate int64, seed uint64) fleetRun {
	dir := runDir(t)
	defer os.RemoveAll(dir) // after nt.Close has stopped the peers
	nt, hs := fleetNet(t, hosts, rate)
	defer nt.Close()
	src := filepath.Join(dir, "src", "fleet.bin")
	sum := writeRandom(t, src, size, seed)
	torrent := filepath.Join(dir, "fleet.torrent")
	if out, err := exec.Command(ltPython, ltScript(), "torrent", src, torrent, strconv.Itoa(1<<20)).CombinedOutput(); err != nil {
		t.Fatalf("making the torrent: %v\n%s", err, out)
	}
	peers := make([]*ltPeer, hosts+1)
	for i, h := range hs {
		role, folder := "seeder", filepath.Dir(src)
		if i > 0 {
			role, folder = "leecher", filepath.Join(dir, fmt.Sprintf("h%d", i))
			if err := os.Mkdir(folder, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		peers[i] = startLTPeer(t, h, role, torrent, folder, h.Addr.String())
	}
	addrs := make([]string, len(peers))
	for i, p := range peers {
		f, err := p.expect("READY", 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = f[1]
	}
	r := fleetRun{times: make([]float64, hosts), load: load()}
	tx0 := txBytes(t, hs[0])
	start := time.Now()
	for i := 1; i < len(peers); i++ {
		others := slices.Delete(slices.Clone(addrs), i, i+1)
		if _, err := io.WriteString(peers[i].in, "GO "+strings.Join(others, " ")+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	// Every host's DONE, timed as it arrives.
	errs := make([]error, hosts)
	var wg sync.WaitGroup
	for i := 1; i < len(peers); i++ {
		wg.Go(func() {
			_, errs[i-1] = peers[i].expect("DONE", 30*time.Minute)
			r.times[i-1] = time.Since(start).Seconds()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("libtorrent host %d: %v", i+1, err)
		}
	}
	r.wire = txBytes(t, hs[0]) - tx0
	io.WriteString(peers[0].in, "EXIT\n")
	f, err := peers[0].expect("STATS", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r.payload, _ = strconv.ParseFloat(f[1], 64)
	r.slowest = slices.Max(r.times)
	for i := 1; i <= hosts; i++ {
		sameBytes(t, fmt.Sprintf("libtorrent host %d", i), filepath.Join(dir, fmt.Sprintf("h%d", i), "fleet.bin"), sum)
	}
	return r
}

// fleetQUICRef sends size bytes with plain quic-go from the publisher to
// host 1 (cmd/shoal-bench's reference client and server) on the fleet's
// caps, and times it.
func fleetQUICRef(t *testing.T, hosts int, size, rate int64) fleetRun {
	bin := filepath.Join(t.TempDir(), "shoal-bench")
	c := exec.Command("go", "build", "-o", bin, "github.com/shoal-p2p/shoal/cmd/shoal-bench")
	if _, file, _, ok := runtime.Caller(0); ok {
		c.Dir = filepath.Dir(file)
	}
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/shoal-bench: %v\n%s", err, out)
	}
	nt, hs := fleetNet(t, hosts, rate)
	defer nt.Close()
	srv := startLTPeerCmd(t, hs[1].Command(bin, "-role", "quicref-server", "-listen", hs[1].Addr.String()+":0"))
	f, err := srv.expect("READY", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r := fleetRun{times: make([]float64, 1), load: load()}
	tx0 := txBytes(t, hs[0])
	cl := startLTPeerCmd(t, hs[0].Command(bin, "-role", "quicref-client", "-addr", f[1], "-size", strconv.FormatInt(size, 10)))
	f, err = cl.expect("DONE", 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r.times[0], _ = strconv.ParseFloat(f[1], 64)
	r.slowest = r.times[0]
	r.wire = txBytes(t, hs[0]) - tx0
	r.payload = float64(size)
	return r
}
