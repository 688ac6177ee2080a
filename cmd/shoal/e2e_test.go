package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/seed"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds the shoal command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "shoal-e2e-"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "shoal"), ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "shoal")
}

// env isolates the command from the user's config and data.
func env(t *testing.T, home string) []string {
	return append(os.Environ(),
		"HOME="+home,
		"XDG_DATA_HOME="+filepath.Join(home, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"SHOAL_DATA_DIR=", "SHOAL_CONFIG=")
}

// proc is a running "shoal node".
type proc struct {
	cmd    *exec.Cmd
	data   string
	status seed.Status
}

func startNodeProc(t *testing.T, bin, data string, boot ...string) *proc {
	t.Helper()
	var args []string
	for _, b := range boot {
		args = append(args, "-bootstrap", b)
	}
	return startNodeProcArgs(t, bin, data, args...)
}

// startNodeProcArgs starts "shoal node" with extra flags.
func startNodeProcArgs(t *testing.T, bin, data string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"node", "--json", "--data", data, "-listen", "127.0.0.1:0", "-api", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = env(t, filepath.Dir(data))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, data: data}
	t.Cleanup(func() { p.kill() })
	if err := json.NewDecoder(bufio.NewReader(stdout)).Decode(&p.status); err != nil {
		t.Fatalf("node did not print its status: %v; stderr: %s", err, stderr.String())
	}
	return p
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("node exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("node did not stop within 15 s of SIGTERM")
	}
}

// shoal runs one command and returns its stdout, stderr and exit code.
func shoal(t *testing.T, bin string, home string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env(t, home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("shoal %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func writeFolder(t *testing.T, root string) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	files := map[string][]byte{
		"big.bin":         make([]byte, 5<<20+123),
		"docs/readme.txt": []byte("shoal end to end\n"),
		"docs/deep/x.bin": make([]byte, 300<<10),
		"tools/run.sh":    []byte("#!/bin/sh\necho hi\n"),
	}
	for name, b := range files {
		if strings.HasSuffix(name, ".bin") {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
		}
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func sameFolder(t *testing.T, root string, want map[string][]byte) {
	t.Helper()
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("%s differs from the source (%d bytes, want %d)", name, len(got), len(b))
		}
	}
	st, err := os.Stat(filepath.Join(root, "tools/run.sh"))
	if err != nil || st.Mode().Perm()&0o100 == 0 {
		t.Fatalf("tools/run.sh lost its executable bit: %v %v", st.Mode(), err)
	}
}

// TestEndToEnd runs real shoal processes: A publishes a folder; B gets it
// by link; C gets it through the DHT only; A is killed and D still gets it
// from B and C; B restarts and seeds its library without re-hashing.
func TestEndToEnd(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	src := filepath.Join(root, "src", "release")
	files := writeFolder(t, src)

	a := startNodeProc(t, bin, filepath.Join(root, "a", "data"))
	out, errOut, code := shoal(t, bin, filepath.Join(root, "a"), "publish", "--json", "--data", a.data, src)
	if code != 0 {
		t.Fatalf("publish: exit %d: %s", code, errOut)
	}
	var pubs []seed.Published
	if err := json.Unmarshal([]byte(out), &pubs); err != nil || len(pubs) != 1 {
		t.Fatalf("publish printed %q: %v", out, err)
	}
	link := pubs[0].Link
	l, err := chunker.ParseLink(link)
	if err != nil {
		t.Fatal(err)
	}
	l.Peers = nil
	bare := l.String()

	b := startNodeProc(t, bin, filepath.Join(root, "b", "data"), a.status.Listen)
	if _, e, code := shoal(t, bin, filepath.Join(root, "b"), "get", "--data", b.data, link, "-o", filepath.Join(root, "b", "out")); code != 0 {
		t.Fatalf("B get: exit %d: %s", code, e)
	}
	sameFolder(t, filepath.Join(root, "b", "out", "release"), files)

	c := startNodeProc(t, bin, filepath.Join(root, "c", "data"), a.status.Listen)
	if _, e, code := shoal(t, bin, filepath.Join(root, "c"), "get", "--data", c.data, bare, "-o", filepath.Join(root, "c", "out")); code != 0 {
		t.Fatalf("C get through the DHT: exit %d: %s", code, e)
	}
	sameFolder(t, filepath.Join(root, "c", "out", "release"), files)

	a.kill()
	d := startNodeProc(t, bin, filepath.Join(root, "d", "data"), b.status.Listen)
	if _, e, code := shoal(t, bin, filepath.Join(root, "d"), "get", "--data", d.data, bare, "-o", filepath.Join(root, "d", "out")); code != 0 {
		t.Fatalf("D get with the publisher gone: exit %d: %s", code, e)
	}
	sameFolder(t, filepath.Join(root, "d", "out", "release"), files)

	// B restarts on its data folder: it seeds again without re-hashing (its
	// stored parity and leaves are untouched) and E gets from it alone.
	// First B finishes rebuilding the parity its get did not fetch.
	waitParityRebuilt(t, bin, filepath.Join(root, "b"), b.data, pubs[0].Item.ID)
	store := filepath.Join(b.data, "store")
	before := mtimes(t, store)
	b.stop(t)
	b2 := startNodeProc(t, bin, b.data)
	if after := mtimes(t, store); !equalMaps(before, after) {
		t.Fatalf("restart rewrote the store: before %v, after %v", before, after)
	}
	ls, _, code := shoal(t, bin, filepath.Join(root, "b"), "ls", "--json", "--data", b2.data)
	if code != 0 || !strings.Contains(ls, pubs[0].Item.ID) {
		t.Fatalf("B's library after restart: %s (exit %d)", ls, code)
	}
	c.kill()
	d.kill()
	l.Peers = []chunker.PeerHint{{PeerID: b2.status.PeerID, Addr: b2.status.Listen}}
	e := filepath.Join(root, "e")
	if _, errOut, code := shoal(t, bin, e, "get", "--data", filepath.Join(e, "data"), l.String(), "-o", filepath.Join(e, "out")); code != 0 {
		t.Fatalf("E get from the restarted B: exit %d: %s", code, errOut)
	}
	sameFolder(t, filepath.Join(e, "out", "release"), files)
}

func mtimes(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	m := map[string]time.Time{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			m[p] = info.ModTime()
		}
		return nil
	})
	if len(m) == 0 {
		t.Fatalf("store %s is empty", dir)
	}
	return m
}

func equalMaps(a, b map[string]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !b[k].Equal(v) {
			return false
		}
	}
	return true
}

// TestErrors checks one-line errors and exit codes for bad input.
func TestErrors(t *testing.T) {
	bin := binary(t)
	home := t.TempDir()
	data := filepath.Join(home, "data")
	cases := []struct {
		name string
		args []string
		code int
		say  string
	}{
		{"unknown command", []string{"frobnicate"}, exitUsage, "unknown command"},
		{"bad link", []string{"get", "--data", data, "shoal:not-an-id"}, exitUsage, "bad link"},
		{"not a link", []string{"get", "--data", data, "http://example.com/x"}, exitUsage, "bad link"},
		{"missing path", []string{"publish", "--data", data, filepath.Join(home, "nope")}, exitNotFound, "does not exist"},
		{"rm unknown", []string{"rm", "--data", data, "sh17hpp7wqitbm65dzez656c2dlrpuz6rm7tgcd54e2imydjooi3z7q"}, exitNotFound, "not in the library"},
		{"rm bad id", []string{"rm", "--data", data, "sh1aaaa"}, exitUsage, "bad link"},
		{"unreachable swarm", []string{"get", "--data", data, "-wait", "2s", "shoal:sh17hpp7wqitbm65dzez656c2dlrpuz6rm7tgcd54e2imydjooi3z7q?peer=127.0.0.1:9", "-o", filepath.Join(home, "out")}, exitNoPeers, "no peer served"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := shoal(t, bin, home, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "shoal: ") || !strings.Contains(last, tc.say) {
				t.Fatalf("last stderr line %q, want a one-line error mentioning %q", last, tc.say)
			}
		})
	}
}

// TestDiskFull downloads into a 1 MiB tmpfs: the command fails with exit
// code 5 and a message that says what to do. It needs root to mount.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	bin := binary(t)
	root := t.TempDir()
	full := filepath.Join(root, "full")
	os.MkdirAll(full, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", full).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", full).Run() })

	src := filepath.Join(root, "src", "big.bin")
	os.MkdirAll(filepath.Dir(src), 0o755)
	os.WriteFile(src, bytes.Repeat([]byte{1, 2, 3, 4}, 1<<20), 0o644)
	a := startNodeProc(t, bin, filepath.Join(root, "a", "data"))
	out, errOut, code := shoal(t, bin, filepath.Join(root, "a"), "publish", "--json", "--data", a.data, src)
	if code != 0 {
		t.Fatalf("publish: %s", errOut)
	}
	var pubs []seed.Published
	json.Unmarshal([]byte(out), &pubs)
	_, stderr, code := shoal(t, bin, filepath.Join(root, "b"), "get", "--data", filepath.Join(root, "b", "data"), "-wait", "20s", pubs[0].Link, "-o", full)
	if code != exitDiskFull || !strings.Contains(stderr, "disk is full") || strings.Count(stderr, "disk is full") != 1 || strings.Contains(stderr, pubs[0].Item.ID) {
		t.Fatalf("exit %d, stderr %q; want exit %d saying once that the disk is full, without the content ID", code, stderr, exitDiskFull)
	}
	if left, _ := os.ReadDir(full); len(left) != 0 {
		t.Fatalf("the failed download left %d entries in the full folder (%s...)", len(left), left[0].Name())
	}
}
