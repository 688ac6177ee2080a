package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

const testCommunity = "5348f41c0a1d00000000000000000000000000aa"

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// buildChat builds this program once for all tests.
func buildChat(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shoal-chat-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "chat")
		if out, err := exec.Command("go", "build", "-o", buildBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildBin != "" {
		os.RemoveAll(filepath.Dir(buildBin))
	}
	os.Exit(code)
}

// freePorts returns n UDP ports free on 127.0.0.1 right now.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var conns []*net.UDPConn
	var ports []int
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	for _, c := range conns {
		c.Close()
	}
	return ports
}

type result struct {
	received map[string]int // texts by sender key
	summary  summary
}

// runChats runs n chat processes for the given seconds, the first as
// everyone's bootstrap peer, each saying "from <i>" every second, and
// returns what each printed.
func runChats(t *testing.T, bin string, n, seconds int) []result {
	t.Helper()
	ports := freePorts(t, n)
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range n {
		args := []string{"-listen", fmt.Sprintf("127.0.0.1:%d", ports[i]), "-community", testCommunity,
			"-say", "from " + strconv.Itoa(i), "-every", "1s", "-seconds", strconv.Itoa(seconds)}
		if i > 0 {
			args = append(args, "-bootstrap", fmt.Sprintf("127.0.0.1:%d", ports[0]))
		}
		cmds[i] = exec.Command(bin, args...)
		outs[i] = &bytes.Buffer{}
		cmds[i].Stdout = outs[i]
		cmds[i].Stderr = os.Stderr
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	results := make([]result, n)
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("chat %d: %v", i, err)
		}
		results[i] = parse(t, i, outs[i].Bytes())
	}
	return results
}

func parse(t *testing.T, i int, out []byte) result {
	t.Helper()
	r := result{received: map[string]int{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) == 0 {
		t.Fatalf("chat %d printed nothing", i)
	}
	for _, l := range lines[:len(lines)-1] {
		var m received
		if err := json.Unmarshal([]byte(l), &m); err != nil || m.From == "" {
			t.Fatalf("chat %d: line %q is not a message: %v", i, l, err)
		}
		r.received[m.Text]++
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r.summary); err != nil || r.summary.Peers == nil {
		t.Fatalf("chat %d: last line %q is not the summary: %v", i, lines[len(lines)-1], err)
	}
	return r
}

// check asserts that every chat heard from at least want others, listed
// at least want peers, and that the counts add up.
func check(t *testing.T, results []result, want int) {
	t.Helper()
	for i, r := range results {
		heard := 0
		var total uint64
		for text, k := range r.received {
			if text == "from "+strconv.Itoa(i) {
				t.Errorf("chat %d received its own message", i)
			}
			heard++
			total += uint64(k)
		}
		if heard < want {
			t.Errorf("chat %d heard from %d others, want at least %d: %v", i, heard, want, r.received)
		}
		if total != r.summary.Received {
			t.Errorf("chat %d printed %d messages, summary says %d", i, total, r.summary.Received)
		}
		if len(r.summary.Peers) < want || r.summary.Sent == 0 {
			t.Errorf("chat %d: %d peers, %d sent", i, len(r.summary.Peers), r.summary.Sent)
		}
		for _, p := range r.summary.Peers {
			if len(p.PublicKey) != 148 || p.Addr == "" {
				t.Errorf("chat %d: peer %+v", i, p)
			}
		}
	}
}

// TestTwoChats: two real chat processes on loopback, the second
// bootstrapping from the first, hear each other; the bootstrap peer is
// listed as a peer.
func TestTwoChats(t *testing.T) {
	bin := buildChat(t)
	check(t, runChats(t, bin, 2, 5), 1)
}

// TestTenChats: ten processes, all bootstrapping from the first; the
// walk introduces them to each other, and every one hears from at least
// five of the nine others within 12 s (a random walk on a loaded
// machine may not have introduced every pair yet).
func TestTenChats(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: ten processes for 12 s")
	}
	bin := buildChat(t)
	check(t, runChats(t, bin, 10, 12), 5)
}
