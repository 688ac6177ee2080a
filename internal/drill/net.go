//go:build linux

package drill

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// Prefix starts the name of every namespace the harness creates.
const Prefix = "shoaldrill-"

var netSeq atomic.Int64

// Net is a set of hosts on one bridge.
type Net struct {
	t      testing.TB
	prefix string  // Prefix + "<pid>-<n>-"
	bridge string  // the bridge's namespace
	base   [3]byte // the bridge's /24: 10.77.0, or 198.18.0 for NewPublic

	mu      sync.Mutex
	hosts   []*Host
	routers []*Router
	procs   []*exec.Cmd // started in the hosts, killed by Close (their starters wait)
	closed  bool
}

// Host is one namespace with one address.
type Host struct {
	net   *Net
	Index int
	NS    string     // namespace name
	Addr  netip.Addr // 10.77.0.<Index+1> (198.18.0.<Index+1>), or its private address behind a Router
	veth  string     // bridge-side end, in brNS
	brNS  string     // the namespace of the bridge it hangs on
}

// Available reports why the harness cannot run here, or "" when it can.
func Available() string {
	if os.Geteuid() != 0 {
		return "drills need root to create network namespaces"
	}
	for _, c := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(c); err != nil {
			return "drills need the " + c + " command"
		}
	}
	return ""
}

// New makes a Net with n hosts. Close runs in t.Cleanup.
func New(t testing.TB, n int) *Net { t.Helper(); return newNet(t, n, [3]byte{10, 77, 0}) }

// NewPublic makes a Net whose bridge is a public segment, 198.18.0.0/24
// (a range for benchmarking networks: global unicast, not private, never
// routed outside the namespaces), with n hosts on it. Routers (AddRouter)
// join private segments to it.
func NewPublic(t testing.TB, n int) *Net { t.Helper(); return newNet(t, n, [3]byte{198, 18, 0}) }

func newNet(t testing.TB, n int, base [3]byte) *Net {
	t.Helper()
	if why := Available(); why != "" {
		t.Skip(why)
	}
	CleanLeftovers()
	nt := &Net{t: t, prefix: fmt.Sprintf("%s%d-%d-", Prefix, os.Getpid(), netSeq.Add(1)), base: base}
	nt.bridge = nt.prefix + "br"
	t.Cleanup(nt.Close)
	if err := nt.ip("netns", "add", nt.bridge); err != nil {
		if strings.Contains(err.Error(), "ermission") || strings.Contains(err.Error(), "not permitted") {
			t.Skipf("drills cannot create network namespaces here: %v", err)
		}
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-n", nt.bridge, "link", "set", "lo", "up"},
		{"-n", nt.bridge, "link", "add", "br0", "type", "bridge"},
		{"-n", nt.bridge, "link", "set", "br0", "up"},
	} {
		if err := nt.ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		nt.AddHost()
	}
	return nt
}

// AddHost adds a host with the next free address.
func (nt *Net) AddHost() *Host {
	nt.t.Helper()
	nt.mu.Lock()
	i := len(nt.hosts)
	nt.mu.Unlock()
	if i >= 250 {
		nt.t.Fatal("drill: at most 250 hosts per Net")
	}
	h := &Host{net: nt, Index: i, NS: fmt.Sprintf("%sh%d", nt.prefix, i),
		Addr: netip.AddrFrom4([4]byte{nt.base[0], nt.base[1], nt.base[2], byte(i + 1)}), veth: fmt.Sprintf("v%d", i), brNS: nt.bridge}
	nt.attach(h, nt.bridge, "br0")
	return h
}

// attach creates h's namespace and joins it to the bridge dev in namespace
// brNS with a veth pair (created inside brNS, the far end moved straight
// into h's namespace: the root namespace never sees it); extra commands
// (a default route, say) run after.
func (nt *Net) attach(h *Host, brNS, dev string, extra ...[]string) {
	if err := nt.ip("netns", "add", h.NS); err != nil {
		nt.t.Fatal(err)
	}
	nt.mu.Lock()
	nt.hosts = append(nt.hosts, h)
	nt.mu.Unlock()
	cmds := [][]string{
		{"-n", h.NS, "link", "set", "lo", "up"},
		{"-n", brNS, "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		{"-n", brNS, "link", "set", h.veth, "master", dev, "up"},
		{"-n", h.NS, "addr", "add", h.Addr.String() + "/24", "dev", "eth0"},
		{"-n", h.NS, "link", "set", "eth0", "up"},
	}
	for _, args := range append(cmds, extra...) {
		if err := nt.ip(args...); err != nil {
			nt.t.Fatal(err)
		}
	}
}

// Hosts returns the hosts in order of creation.
func (nt *Net) Hosts() []*Host {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	return append([]*Host(nil), nt.hosts...)
}

// Close kills the processes started in the hosts and deletes every
// namespace of the Net. It is idempotent.
func (nt *Net) Close() {
	nt.mu.Lock()
	if nt.closed {
		nt.mu.Unlock()
		return
	}
	nt.closed = true
	procs := nt.procs
	hosts := nt.hosts
	routers := nt.routers
	nt.mu.Unlock()
	for _, c := range procs {
		if c.Process != nil {
			c.Process.Kill()
		}
	}
	for _, h := range hosts {
		deleteNS(h.NS)
	}
	for _, r := range routers {
		deleteNS(r.NS)
	}
	deleteNS(nt.bridge)
}

// Command returns a command that runs in the host's namespace. It is
// killed by Close if still running; the kernel kills it too if the test
// process dies.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	c := exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	h.net.mu.Lock()
	h.net.procs = append(h.net.procs, c)
	h.net.mu.Unlock()
	return c
}

// Shape caps the host's download (what it receives) and upload (what it
// sends) in bits per second with tc tbf; 0 leaves a direction unshaped.
func (h *Host) Shape(down, up int64) error {
	if down > 0 {
		if err := h.net.tc(h.brNS, h.veth, down); err != nil {
			return err
		}
	}
	if up > 0 {
		if err := h.net.tc(h.NS, "eth0", up); err != nil {
			return err
		}
	}
	return nil
}

func (nt *Net) tc(ns, dev string, bits int64) error {
	burst := max(64<<10, bits/8/50) // 20 ms of traffic, at least 64 KiB
	out, err := exec.Command("tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", strconv.FormatInt(bits, 10)+"bit", "burst", strconv.FormatInt(burst, 10),
		"latency", "200ms").CombinedOutput()
	if err != nil {
		return fmt.Errorf("tc tbf on %s in %s: %v: %s", dev, ns, err, bytes.TrimSpace(out))
	}
	return nil
}

// Cut takes the host off the network: its bridge-side veth goes down, as if
// its cable were pulled. Restore undoes it.
func (h *Host) Cut() error { return h.net.ip("-n", h.brNS, "link", "set", h.veth, "down") }

// Restore puts a cut host back on the network.
func (h *Host) Restore() error { return h.net.ip("-n", h.brNS, "link", "set", h.veth, "up") }

func (nt *Net) ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// deleteNS kills what still runs in ns and deletes it.
func deleteNS(ns string) {
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	exec.Command("ip", "netns", "del", ns).Run()
}

// Namespaces lists the namespaces whose names start with prefix.
func Namespaces(prefix string) ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// CleanLeftovers deletes the namespaces of earlier runs whose process no
// longer runs (a crashed or killed test binary).
func CleanLeftovers() {
	names, err := Namespaces(Prefix)
	if err != nil {
		return
	}
	for _, ns := range names {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(ns, Prefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			deleteNS(ns)
		}
	}
}

// OwnPrefix is the prefix of this process's namespaces.
func OwnPrefix() string { return fmt.Sprintf("%s%d-", Prefix, os.Getpid()) }
