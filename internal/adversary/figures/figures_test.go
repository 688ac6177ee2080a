package figures

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/dht"
	"github.com/shoal-p2p/shoal/internal/adversary"
	"github.com/shoal-p2p/shoal/internal/benchfile"
	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/seed"
)

// Addresses on the loopback: the victim and the DHT's honest nodes on
// 127.0.0.1, the honest downloader on 127.0.0.2, attackers from
// 127.0.1.0/24 (connections, datagrams) and 127.0.2.0/24 (Sybils), so that
// every per-address cap sees them apart.
const (
	victimAddr     = "127.0.0.1:0"
	downloaderAddr = "127.0.0.2:0"
	helpers        = 8 // honest DHT nodes
)

// attackers returns n addresses 127.0.<net>.1 ... with port 0.
func attackers(net, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.%d.%d:0", net, i+1)
	}
	return out
}

// TestFloodFigures times an honest download of a 64 MiB file from a real
// `shoal node` process (the victim), fetched by a second `shoal node`
// process started afresh for each run, with and without each flood
// running, in alternated pairs (unloaded, then flooded). The attackers are
// package adversary's, in this test's process. It reports per flood the
// median times, the speed ratio per pair, both processes' peak resident
// memory (VmHWM, reset before each run) and what the attacker sent. It
// asserts that every download completes and that the victim's peak stays
// under 200 MiB; the 50 % speed target is reported, not asserted (timings
// on a shared machine).
//
// SHOAL_ATTACK_FIGURES=1 runs it; SHOAL_ATTACK_PAIRS (default 3), _SIZE
// (default 64MiB) and _ONLY (a substring of flood names) tune it;
// SHOAL_ATTACK_LOGS names a folder that keeps every downloader's log (run
// with SHOAL_DEBUG=1 for the downloads' debug lines).
func TestFloodFigures(t *testing.T) {
	if os.Getenv("SHOAL_ATTACK_FIGURES") == "" {
		t.Skip("long form: set SHOAL_ATTACK_FIGURES=1")
	}
	pairs := 3
	if s := os.Getenv("SHOAL_ATTACK_PAIRS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SHOAL_ATTACK_PAIRS=%q", s)
		}
		pairs = n
	}
	size := int64(64 << 20)
	if s := os.Getenv("SHOAL_ATTACK_SIZE"); s != "" {
		n, err := benchfile.ParseSize(s)
		if err != nil {
			t.Fatal(err)
		}
		size = n
	}
	w := newWorld(t, size)
	var rows []row
	for fi, f := range floods() {
		if only := os.Getenv("SHOAL_ATTACK_ONLY"); only != "" && !strings.Contains(f.name, only) {
			continue
		}
		rows = append(rows, w.measure(f, fi, pairs))
	}
	t.Logf("%d pairs, %d MiB, load average before/after: %s / %s", pairs, size>>20, w.load, loadAvg())
	var limited, hostLimited, timeouts, dgHost uint64
	for _, p := range w.dht {
		c := p.DHT.Counters()
		limited, hostLimited, timeouts = limited+c.RateLimited, hostLimited+c.HostRateLimited, timeouts+c.Timeouts
		dgHost += p.Node.Endpoint().Stats().DroppedRateLimitedHost
	}
	t.Logf("the honest DHT nodes refused %d requests by their sender's rate and %d by its host's, dropped %d datagrams by the host's, and saw %d of their own requests time out", limited, hostLimited, dgHost, timeouts)
	t.Log("| Flood | Attacker volume (last pair) | Unloaded (median, min-max) | Flooded (median, min-max) | Speed under flood (median, min-max) | Victim peak RSS unloaded / flooded | Downloader peak RSS flooded |")
	t.Log("| --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		t.Log(r.markdown())
	}
	for _, r := range rows {
		if r.victimPeak >= 200<<20 {
			t.Errorf("%s: the victim's peak RSS reached %d MiB, want under 200", r.name, r.victimPeak>>20)
		}
	}
}

// world is what every flood shares: the built binary, a folder, and an
// honest DHT of helpers nodes.
type world struct {
	t    *testing.T
	bin  string
	root string
	size int64
	dht  []*adversary.DHTPeer
	boot string // a DHT node every shoal process joins through
	load string
}

func newWorld(t *testing.T, size int64) *world {
	w := &world{t: t, root: t.TempDir(), size: size, load: loadAvg()}
	w.bin = filepath.Join(w.root, "shoal")
	out, err := exec.Command("go", "build", "-o", w.bin, "github.com/shoal-p2p/shoal/cmd/shoal").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range helpers {
		w.dht = append(w.dht, adversary.NewDHTPeer(t, victimAddr, adversary.NotFound))
	}
	for _, p := range w.dht[1:] {
		if err := p.DHT.Bootstrap(ctx, []netip.AddrPort{w.dht[0].Addr()}); err != nil {
			t.Fatalf("helper bootstrap: %v", err)
		}
	}
	w.boot = w.dht[0].Addr().String()
	return w
}

// content is a random file and what the node will make of it.
type content struct {
	path     string
	id       chunker.ContentID
	manifest []byte
	chunks   int
}

// makeContent writes a random file of the world's size and computes its
// content ID and manifest as the node's Publish will (default options).
func (w *world) makeContent(name string, seedByte byte) content {
	t := w.t
	dir := filepath.Join(w.root, "src", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "payload.bin")
	if err := benchfile.WriteRandom(path, w.size, [32]byte{seedByte, 0xf1}); err != nil {
		t.Fatal(err)
	}
	pub, err := chunker.Publish(context.Background(), nil, path, chunker.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return content{path: path, id: pub.ID, manifest: pub.Encoded, chunks: pub.Manifest.NumChunks()}
}

// proc is a running `shoal node`.
type proc struct {
	cmd    *exec.Cmd
	data   string
	id     identity.PeerID
	addr   netip.AddrPort
	client *seed.Client
	stderr *os.File
}

// startNode runs `shoal node` on listen, joining the DHT through the
// world's first helper, with no TCP API and no gateway.
func (w *world) startNode(dir, listen string) *proc {
	t := w.t
	t.Helper()
	data := filepath.Join(dir, "data")
	cmd := exec.Command(w.bin, "node", "--json", "--data", data, "--listen", listen, "--api", "off", "--gateway", "off", "--bootstrap", w.boot)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "xdg"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "SHOAL_DATA_DIR=", "SHOAL_CONFIG=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = errf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, data: data, stderr: errf}
	t.Cleanup(p.stop)
	var st seed.Status
	if err := json.NewDecoder(bufio.NewReader(stdout)).Decode(&st); err != nil {
		p.stop()
		b, _ := os.ReadFile(errf.Name())
		t.Fatalf("node did not print its status: %v; stderr: %s", err, b)
	}
	if p.id, err = identity.ParsePeerID(st.PeerID); err != nil {
		t.Fatal(err)
	}
	if p.addr, err = netip.ParseAddrPort(st.Listen); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if p.client, err = seed.Dial(ctx, data); err != nil {
		t.Fatal(err)
	}
	return p
}

// stop ends the process (SIGTERM, then SIGKILL after 10 s); it may be
// called again.
func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	p.stderr.Close()
}

// resetPeak resets the process's peak resident set (VmHWM) to its current
// size.
func (p *proc) resetPeak() {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0); err != nil {
		p.stderr.WriteString("figures: clear_refs: " + err.Error() + "\n")
	}
}

// peak returns the process's peak resident set (VmHWM) in bytes.
func (p *proc) peak() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// target is what an attack aims at: the victim and the content it seeds.
type target struct {
	w      *world
	victim *proc
	c      content
}

// attack is a running flood: hints for the honest link (peers the link
// names before the victim) and how to stop it.
type attack struct {
	hints []chunker.PeerHint
	stop  func() string // ends the attack and says what it sent
}

// flood is one row of the table.
type flood struct {
	name string
	// bareID: the honest download is given only the content ID and finds
	// the victim through the DHT.
	bareID bool
	// fresh: each flooded run downloads new content that the victim
	// publishes after the attack started (the Sybils announce first).
	fresh bool
	start func(ctx context.Context, t *testing.T, tg *target) attack
}

func hint(id identity.PeerID, addr netip.AddrPort) chunker.PeerHint {
	return chunker.PeerHint{PeerID: id.String(), Addr: addr.String()}
}

func floods() []flood {
	return []flood{
		{name: "(a) half-open QUIC handshakes, 1 address", start: func(ctx context.Context, t *testing.T, tg *target) attack {
			return halfOpen(ctx, t, tg, attackers(1, 1))
		}},
		{name: "(a) half-open QUIC handshakes, 8 addresses", start: func(ctx context.Context, t *testing.T, tg *target) attack {
			return halfOpen(ctx, t, tg, attackers(1, 8))
		}},
		{name: "(b) throwaway identities, one connection each", start: func(ctx context.Context, t *testing.T, tg *target) attack {
			const perAddr = 64
			addrs := attackers(1, 4)
			var stops []func()
			opened := 0
			for _, a := range addrs {
				n, stop, err := adversary.Identities(ctx, tg.victim.addr, a, perAddr)
				if err != nil {
					t.Fatal(err)
				}
				opened += n
				stops = append(stops, stop)
			}
			return attack{stop: func() string {
				for _, s := range stops {
					s()
				}
				return fmt.Sprintf("%d identities from %d addresses, %d connections accepted", perAddr*len(addrs), len(addrs), opened)
			}}
		}},
		{name: "(c) one identity opening many connections", start: func(ctx context.Context, t *testing.T, tg *target) attack {
			const rate = 200
			f, err := adversary.ReconnectFlood(ctx, tg.victim.addr, attackers(1, 1)[0], rate)
			if err != nil {
				t.Fatal(err)
			}
			testwait.Eventually(t, 30*time.Second, "the reconnect flood runs", func() error {
				if f.Sent() < 20 {
					return fmt.Errorf("%d dials", f.Sent())
				}
				return nil
			})
			return attack{stop: func() string {
				v := f.Stop()
				return fmt.Sprintf("1 identity, %d connection attempts (%.0f/s, paced at up to %d/s), %d completed a handshake", v.Sent, v.PerSecond(), rate, v.OK)
			}}
		}},
		{name: "(d) Sybil provider records, 6 on one address, gone after announcing", bareID: true, fresh: true, start: func(ctx context.Context, t *testing.T, tg *target) attack {
			return sybils(ctx, t, tg, 6, attackers(2, 1), false)
		}},
		{name: "(d) Sybil provider records, 24 on 24 addresses, stalling", bareID: true, fresh: true, start: func(ctx context.Context, t *testing.T, tg *target) attack {
			return sybils(ctx, t, tg, 24, attackers(2, 24), true)
		}},
		{name: "(e) silent identities and replayed pings (DHT)", bareID: true, start: func(ctx context.Context, t *testing.T, tg *target) attack {
			const ids, rate, replays = 512, 2000, 500
			addrs := attackers(1, 8)
			// A captured signed ping of a real node (a helper that is
			// made to bootstrap from the attacker).
			capture, err := adversary.NewCapture(attackers(1, 1)[0])
			if err != nil {
				t.Fatal(err)
			}
			defer capture.Close()
			helper := tg.w.dht[len(tg.w.dht)-1]
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			go helper.DHT.Bootstrap(cctx, []netip.AddrPort{capture.Addr()})
			ping, err := capture.Next(cctx)
			if err != nil {
				t.Fatalf("capturing a ping: %v", err)
			}
			fl, err := adversary.DHTRequestFlood(ctx, tg.victim.addr, addrs, ids, rate)
			if err != nil {
				t.Fatal(err)
			}
			rf, err := adversary.ReplayFlood(ctx, ping, tg.victim.addr, addrs, 64, replays)
			if err != nil {
				t.Fatal(err)
			}
			return attack{stop: func() string {
				v, r := fl.Stop(), rf.Stop()
				return fmt.Sprintf("%d signed requests from %d silent identities on %d addresses (%.0f/s) and %d copies of a captured ping from 64 sockets (%.0f/s)", v.Sent, ids, len(addrs), v.PerSecond(), r.Sent, r.PerSecond())
			}}
		}},
		{name: "(f) hello hoard", start: func(ctx context.Context, t *testing.T, tg *target) attack {
			held := 0
			for _, n := range []uint32{adversary.MaxHelloBody, uint32(5 + (tg.c.chunks+7)/8)} {
				a := adversary.NewSwarmPeerWith(t, overlayAt(attackers(1, 1)[0]), adversary.NotFound)
				k, _ := a.HoldHellos(ctx, tg.victim.id, tg.victim.addr, tg.c.id, 150, n)
				held += k
			}
			return attack{stop: func() string {
				return fmt.Sprintf("2 identities, 300 session streams announcing a hello body and sending none (%d opened)", held)
			}}
		}},
		{name: "(g) upload hoard", start: func(ctx context.Context, t *testing.T, tg *target) attack {
			chunks := make([]int, min(32, tg.c.chunks))
			for i := range chunks {
				chunks[i] = i
			}
			opened := 0
			for range 4 {
				a := adversary.NewSwarmPeerWith(t, overlayAt(attackers(1, 1)[0]), adversary.NotFound)
				k, _ := a.HoardUploads(ctx, tg.victim.id, tg.victim.addr, tg.c.id, chunks)
				opened += k
			}
			return attack{stop: func() string {
				return fmt.Sprintf("4 identities x %d chunk requests never read (%d opened)", len(chunks), opened)
			}}
		}},
		{name: "(h) metadata stall, lies and not-found peers in the link", start: func(ctx context.Context, t *testing.T, tg *target) attack {
			var ps []*adversary.SwarmPeer
			for _, m := range []adversary.SwarmMode{adversary.StallMeta, adversary.StallMeta, adversary.StallMeta,
				adversary.BadManifest, adversary.BadLeaves, adversary.NotFound, adversary.NotFound, adversary.NotFound} {
				p := adversary.NewSwarmPeerWith(t, overlayAt(attackers(1, 1)[0]), m)
				p.Manifest = tg.c.manifest
				ps = append(ps, p)
			}
			var hints []chunker.PeerHint
			for _, p := range ps {
				hints = append(hints, hint(p.ID(), p.Addr()))
			}
			return attack{hints: hints, stop: func() string {
				var asked int64
				for _, p := range ps {
					asked += p.Requests(0) + p.Requests(1) + p.Requests(2) + p.Requests(3) + p.Requests(4)
					p.Node.Close()
				}
				return fmt.Sprintf("the link names 3 stallers, a bad manifest, a bad leaf layer and 3 peers without the content before the seeder; they got %d requests", asked)
			}}
		}},
	}
}

// sybils starts n DHT identities on addrs (in turn) that announce the
// content before the victim publishes it. Stalling ones stay up and answer
// manifest requests "ok" and then nothing; the others close once they
// announced, so their records name dead addresses.
func sybils(ctx context.Context, t *testing.T, tg *target, n int, addrs []string, stall bool) attack {
	var ps []*adversary.DHTPeer
	for i := range n {
		ps = append(ps, adversary.NewDHTPeer(t, addrs[i%len(addrs)], adversary.StallMeta))
	}
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	errs := make(chan error, n)
	for _, p := range ps {
		go func() {
			if err := p.DHT.Bootstrap(sctx, []netip.AddrPort{netip.MustParseAddrPort(tg.w.boot)}); err != nil {
				errs <- fmt.Errorf("sybil bootstrap: %w", err)
				return
			}
			// On a loaded machine a store can time out: one more try.
			err := p.DHT.Provide(sctx, dht.Key(tg.c.id))
			if err != nil {
				err = p.DHT.Provide(sctx, dht.Key(tg.c.id))
			}
			errs <- err
		}()
	}
	announced := 0
	for range ps {
		if err := <-errs; err != nil {
			t.Logf("a Sybil did not announce: %v", err)
			continue
		}
		announced++
	}
	if announced < n/2 {
		t.Fatalf("only %d of %d Sybils announced the content", announced, n)
	}
	if !stall {
		for _, p := range ps {
			p.Close()
		}
	}
	return attack{stop: func() string {
		var asked int64
		for _, p := range ps {
			asked += p.Requests(0) + p.Requests(1) + p.Requests(2) + p.Requests(3) + p.Requests(4)
			p.Close()
		}
		what := "closed after announcing"
		if stall {
			what = fmt.Sprintf("stalling every manifest request (%d swarm requests reached them)", asked)
		}
		return fmt.Sprintf("%d Sybil identities on %d addresses (%d of them announced) before the victim, in a DHT of %d honest nodes and the victim; %s", n, len(addrs), announced, helpers, what)
	}}
}

func halfOpen(ctx context.Context, t *testing.T, tg *target, addrs []string) attack {
	const inFlight, rate = 40, 400
	hold := 15 * time.Second
	f, err := adversary.HalfOpenFlood(ctx, tg.victim.addr, addrs, inFlight, rate, hold)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 30*time.Second, "the handshake flood runs", func() error {
		if n := f.Sent(); n < int64(inFlight) {
			return fmt.Errorf("%d handshakes started", n)
		}
		return nil
	})
	return attack{stop: func() string {
		v := f.Stop()
		return fmt.Sprintf("%d never-finished handshakes from %d addresses (%.0f/s, up to %d in flight per address, each held up to %v), %d reached the server's certificate", v.Sent, len(addrs), v.PerSecond(), inFlight, hold, v.OK)
	}}
}

// run is one timed download.
type run struct {
	d          time.Duration
	victim, dl int64 // peak RSS
	err        error
}

// row is one flood's figures.
type row struct {
	name, volume       string
	unloaded, flooded  []run
	victimPeak, dlPeak int64 // largest over the flooded runs
	victimUnloaded     int64
}

// measure runs pairs alternated pairs for f against a fresh victim.
func (w *world) measure(f flood, fi, pairs int) row {
	t := w.t
	dir := filepath.Join(w.root, fmt.Sprintf("flood%d", fi))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	victim := w.startNode(dir, victimAddr)
	defer victim.stop()
	main := w.makeContent(fmt.Sprintf("flood%d", fi), byte(fi))
	w.publish(victim, main)
	r := row{name: f.name}
	var volumes []string
	for pair := range pairs {
		r.unloaded = append(r.unloaded, w.once(f, victim, main, false, &volumes))
		c := main
		if f.fresh {
			c = w.makeContent(fmt.Sprintf("flood%d-%d", fi, pair), byte(100+10*fi+pair))
		}
		r.flooded = append(r.flooded, w.once(f, victim, c, true, &volumes))
		u, fl := r.unloaded[pair], r.flooded[pair]
		t.Logf("%s, pair %d: unloaded %v, flooded %v; victim peak %d / %d MiB, downloader %d / %d MiB (%s)", f.name, pair+1,
			u.d.Round(time.Millisecond), fl.d.Round(time.Millisecond), u.victim>>20, fl.victim>>20, u.dl>>20, fl.dl>>20, volumes[len(volumes)-1])
	}
	for _, x := range r.flooded {
		r.victimPeak = max(r.victimPeak, x.victim)
		r.dlPeak = max(r.dlPeak, x.dl)
	}
	for _, x := range r.unloaded {
		r.victimUnloaded = max(r.victimUnloaded, x.victim)
	}
	r.volume = volumes[len(volumes)-1]
	return r
}

// publish has the victim publish c and waits until the DHT lists it as a
// provider.
func (w *world) publish(victim *proc, c content) {
	t := w.t
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, err := victim.client.Publish(ctx, seed.PublishRequest{Path: c.path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Item.ID != c.id.String() {
		t.Fatalf("the victim published %s, the test computed %s", pub.Item.ID, c.id)
	}
	probe := w.dht[1].DHT
	// A download searches the DHT anyway: a slow announcement is logged,
	// not fatal.
	err = testwait.Poll(time.Minute, func() error {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var got int
		for p := range probe.FindProviders(pctx, dht.Key(c.id)) {
			got++
			if p.ID == victim.id {
				return nil
			}
		}
		return fmt.Errorf("%d providers found, not the victim", got)
	})
	if err != nil {
		t.Logf("waiting until the DHT lists the victim as a provider of %s: %v", c.id, err)
	}
}

// once runs one download of c from victim, with f's attack running if
// flooded.
func (w *world) once(f flood, victim *proc, c content, flooded bool, volumes *[]string) run {
	t := w.t
	var a attack
	if flooded {
		actx, acancel := context.WithCancel(context.Background())
		defer acancel()
		if !f.fresh {
			victim.resetPeak() // the attack's setup counts
		}
		a = f.start(actx, t, &target{w: w, victim: victim, c: c})
		if f.fresh {
			w.publish(victim, c)
			victim.resetPeak() // the publish's own memory does not
		}
	} else {
		victim.resetPeak()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	link := c.id.String()
	if !f.bareID {
		l := chunker.Link{ID: c.id, Name: "payload.bin", Peers: append(a.hints, hint(victim.id, victim.addr))}
		link = l.String()
	}
	dir, err := os.MkdirTemp(w.root, "dl-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	dl := w.startNode(dir, downloaderAddr)
	defer dl.stop()
	out := filepath.Join(dir, "out")
	os.MkdirAll(out, 0o755)
	start := time.Now()
	it, err := dl.client.Get(ctx, seed.GetRequest{Link: link, Out: out, Wait: seed.Duration(2 * time.Minute)}, nil)
	r := run{d: time.Since(start), err: err}
	r.victim, r.dl = victim.peak(), dl.peak()
	if err == nil {
		if fi, serr := os.Stat(it.Path); serr != nil || fi.Size() != w.size {
			r.err = fmt.Errorf("output %s: %v, %d bytes", it.Path, serr, fi.Size())
		}
	}
	if a.stop != nil {
		*volumes = append(*volumes, a.stop())
	}
	if logs := os.Getenv("SHOAL_ATTACK_LOGS"); logs != "" {
		dl.stop() // its log is complete
		keepLog(t, filepath.Join(dir, "stderr"), logs, fmt.Sprintf("%s-%s-flooded-%v.log", c.id.String()[:12], time.Now().Format("150405.000"), flooded))
	}
	if r.err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "stderr"))
		t.Errorf("%s (flooded %v): download failed after %v: %v; downloader's log tail: %s", f.name, flooded, r.d, r.err, tail(b, 2000))
	}
	return r
}

// keepLog copies a downloader's log into dir (SHOAL_ATTACK_LOGS).
func keepLog(t *testing.T, src, dir, name string) {
	b, err := os.ReadFile(src)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	if err != nil {
		t.Logf("keeping the downloader's log: %v", err)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func overlayAt(addr string) overlay.Config { return overlay.Config{ListenAddr: addr} }

func (r row) markdown() string {
	ratios := make([]float64, len(r.flooded))
	for i := range r.flooded {
		ratios[i] = r.unloaded[i].d.Seconds() / r.flooded[i].d.Seconds()
	}
	mr, lo, hi := stats(ratios)
	return fmt.Sprintf("| %s | %s | %s | %s | %.0f %% (%.0f-%.0f %%) | %d / %d MiB | %d MiB |", r.name, r.volume,
		durations(r.unloaded), durations(r.flooded), 100*mr, 100*lo, 100*hi, r.victimUnloaded>>20, r.victimPeak>>20, r.dlPeak>>20)
}

func durations(rs []run) string {
	var s []float64
	failed := 0
	for _, r := range rs {
		s = append(s, r.d.Seconds())
		if r.err != nil {
			failed++
		}
	}
	m, lo, hi := stats(s)
	out := fmt.Sprintf("%.2f s (%.2f-%.2f)", m, lo, hi)
	if failed > 0 {
		out += fmt.Sprintf(", %d failed", failed)
	}
	return out
}

// stats returns the median, min and max.
func stats(x []float64) (med, lo, hi float64) {
	s := slices.Clone(x)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return "?"
	}
	return string(bytes.Join(f[:3], []byte(" ")))
}
