package main

import (
	"bytes"
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

	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/seed"
)

// These tests follow issue 13's numbered points through real shoal
// processes: a publisher whose uploads are rate limited, so that a
// download is still running when the test interrupts it.

// running is a shoal command started in the background.
type running struct {
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{}
	code           int
}

// lockedBuffer is a bytes.Buffer that a test may read while the process
// writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

func startShoal(t *testing.T, bin, home string, args ...string) *running {
	t.Helper()
	r := &running{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	r.cmd.Env = env(t, home)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := r.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
			if ee.ExitCode() < 0 {
				r.code = -1 // killed by a signal
			}
		}
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			r.cmd.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			t.Logf("shoal %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), r.code, r.stdout.String(), r.stderr.String())
		}
	})
	return r
}

func (r *running) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(90 * time.Second):
		t.Fatalf("shoal did not exit within 90 s; stderr: %s", r.stderr.String())
		return 0
	}
}

// downloaded is a testwait condition: ok holds for the bytes the node's
// download of id verified (-1: the node has no such download).
func downloaded(t *testing.T, bin, home, data, id string, ok func(int64) bool) func() error {
	return func() error {
		if n := downloadedBytes(t, bin, home, data, id); !ok(n) {
			return fmt.Errorf("status reports %d bytes verified", n)
		}
		return nil
	}
}

// downloadedBytes asks the node on data (the running one, or the one a
// running command started) how many bytes its download of id verified.
func downloadedBytes(t *testing.T, bin, home, data, id string) int64 {
	out, errOut, code := shoal(t, bin, home, "status", "--json", "--data", data)
	if code != 0 {
		t.Logf("status: exit %d: %s %s", code, out, errOut)
		return -1
	}
	var st seed.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json printed %q: %v", out, err)
	}
	for _, d := range st.Downloads {
		if d.ID == id {
			return d.Done
		}
	}
	return -1
}

// publishSlow starts a publisher uploading at most 2 MiB/s and publishes a
// random 8 MiB file; it returns the link, the item and the bytes.
func publishSlow(t *testing.T, bin, root string) (*proc, seed.Published, []byte) {
	t.Helper()
	src := filepath.Join(root, "src", "big.bin")
	os.MkdirAll(filepath.Dir(src), 0o755)
	data := make([]byte, 8<<20+4321)
	rng := rand.New(rand.NewPCG(13, 13))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	a := startNodeProcArgs(t, bin, filepath.Join(root, "a", "data"), "--upload-limit", "2MiB/s")
	out, errOut, code := shoal(t, bin, filepath.Join(root, "a"), "publish", "--json", "--data", a.data, src)
	if code != 0 {
		t.Fatalf("publish: exit %d: %s", code, errOut)
	}
	var pubs []seed.Published
	if err := json.Unmarshal([]byte(out), &pubs); err != nil || len(pubs) != 1 {
		t.Fatalf("publish printed %q: %v", out, err)
	}
	return a, pubs[0], data
}

// onlyPartials fails if dir holds anything but hidden partial folders.
func onlyPartials(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".shoal-part.") {
			t.Fatalf("%s holds %s before the download completed", dir, e.Name())
		}
	}
}

// TestInterruptedGetNeverLies covers issue 13 points 1 and 2: SIGINT and
// SIGKILL mid-download leave nothing at the final path, the bar never
// claims 100%, and a rerun with another -o moves the partial there,
// finishes it and prints a path that holds the right bytes.
func TestInterruptedGetNeverLies(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	_, pub, want := publishSlow(t, bin, root)
	home := filepath.Join(root, "b")
	data := filepath.Join(home, "data")
	d1, d2 := filepath.Join(root, "d1"), filepath.Join(root, "d2")

	// Ctrl-C, no node running: the command's own node does the work.
	g := startShoal(t, bin, home, "get", "--data", data, pub.Link, "-o", d1)
	testwait.Eventually(t, time.Minute, "the download verified some bytes", downloaded(t, bin, home, data, pub.Item.ID, func(n int64) bool { return n > 0 }))
	onlyPartials(t, d1)
	g.cmd.Process.Signal(syscall.SIGINT)
	if code := g.wait(t); code != exitError {
		t.Fatalf("get after SIGINT: exit %d, want %d; stderr: %s", code, exitError, g.stderr.String())
	}
	if msg := g.stderr.String(); !strings.Contains(msg, "resume") || strings.Contains(msg, "100%") {
		t.Fatalf("get after SIGINT said %q: want a hint to resume and no 100%%", msg)
	}
	if g.stdout.Len() != 0 {
		t.Fatalf("an interrupted get printed a path: %q", g.stdout.String())
	}
	onlyPartials(t, d1)

	// kill -9 while resuming in the same folder.
	g = startShoal(t, bin, home, "get", "--data", data, pub.Link, "-o", d1)
	testwait.Eventually(t, time.Minute, "the resumed download verified bytes", downloaded(t, bin, home, data, pub.Item.ID, func(n int64) bool { return n > 0 }))
	g.cmd.Process.Signal(syscall.SIGKILL)
	g.wait(t)
	onlyPartials(t, d1)
	if _, err := os.Stat(filepath.Join(d1, "big.bin")); err == nil {
		t.Fatal("big.bin sits at its final path after kill -9")
	}

	// Rerun with another -o: the partial moves to d2 and completes there.
	out, errOut, code := shoal(t, bin, home, "get", "--data", data, pub.Link, "-o", d2)
	if code != 0 {
		t.Fatalf("get -o d2: exit %d: %s", code, errOut)
	}
	printed := strings.TrimSpace(out)
	if printed != filepath.Join(d2, "big.bin") {
		t.Fatalf("get printed %q, want %s", printed, filepath.Join(d2, "big.bin"))
	}
	if got, err := os.ReadFile(printed); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the printed path does not hold the published bytes (%d bytes, %v)", len(got), err)
	}
	if ents, _ := os.ReadDir(d1); len(ents) != 0 {
		t.Fatalf("d1 still holds %s after the partial moved to d2", ents[0].Name())
	}
	if ents, _ := os.ReadDir(d2); len(ents) != 1 {
		t.Fatalf("d2 holds %d entries, want big.bin alone", len(ents))
	}
	ls, _, _ := shoal(t, bin, home, "ls", "--json", "--data", data)
	var items []seed.Item
	json.Unmarshal([]byte(ls), &items)
	if len(items) != 1 || items[0].Path != printed || items[0].Kind != seed.KindDownloaded || items[0].Link == "" {
		t.Fatalf("ls after the download: %s", ls)
	}

	// Issue 13 point 3: already held, with another -o: a copy lands there.
	d3 := filepath.Join(root, "d3")
	out, errOut, code = shoal(t, bin, home, "get", "--data", data, pub.Item.ID, "-o", d3)
	if code != 0 || strings.TrimSpace(out) != filepath.Join(d3, "big.bin") {
		t.Fatalf("get of held content -o d3: exit %d, printed %q: %s", code, out, errOut)
	}
	if got, err := os.ReadFile(filepath.Join(d3, "big.bin")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the copy in d3 differs (%d bytes, %v)", len(got), err)
	}
	// And the same again is refused: shoal does not overwrite.
	_, errOut, code = shoal(t, bin, home, "get", "--data", data, pub.Item.ID, "-o", d3)
	if code != exitError || !strings.Contains(errOut, "already exists") {
		t.Fatalf("second copy into d3: exit %d, %q; want exit 1 saying it already exists", code, errOut)
	}
}

// TestPartialOnAnotherFileSystemIsNamed: a rerun with -o on another file
// system cannot move the partial by a rename, so it refuses and says where
// the partial is. It needs root to mount a tmpfs.
func TestPartialOnAnotherFileSystemIsNamed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	bin := binary(t)
	root := t.TempDir()
	other := filepath.Join(root, "other")
	os.MkdirAll(other, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", other).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", other).Run() })
	_, pub, _ := publishSlow(t, bin, root)
	home := filepath.Join(root, "b")
	data := filepath.Join(home, "data")
	d1 := filepath.Join(root, "d1")
	g := startShoal(t, bin, home, "get", "--data", data, pub.Link, "-o", d1)
	testwait.Eventually(t, time.Minute, "the download verified some bytes", downloaded(t, bin, home, data, pub.Item.ID, func(n int64) bool { return n > 0 }))
	g.cmd.Process.Signal(syscall.SIGKILL)
	g.wait(t)
	_, errOut, code := shoal(t, bin, home, "get", "--data", data, pub.Link, "-o", other)
	if code != exitError || !strings.Contains(errOut, d1) || !strings.Contains(errOut, "-o "+d1) {
		t.Fatalf("get -o on another file system: exit %d, %q; want exit 1 naming %s", code, errOut, d1)
	}
	if ents, _ := os.ReadDir(other); len(ents) != 0 {
		t.Fatalf("the refused get left %s in %s", ents[0].Name(), other)
	}
	// rm, as the message suggests, deletes the unfinished download.
	if _, errOut, code := shoal(t, bin, home, "rm", "--data", data, pub.Item.ID); code != 0 {
		t.Fatalf("rm: exit %d: %s", code, errOut)
	}
	if ents, _ := os.ReadDir(d1); len(ents) != 0 {
		t.Fatalf("rm left %s in %s", ents[0].Name(), d1)
	}
}

// TestResumeRefusesPlantedSymlink (issue 12 item 8): a symlink planted at
// the partial output between a crash and the resume never receives a byte.
func TestResumeRefusesPlantedSymlink(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	_, pub, want := publishSlow(t, bin, root)
	home := filepath.Join(root, "b")
	data := filepath.Join(home, "data")
	d1 := filepath.Join(root, "d1")
	g := startShoal(t, bin, home, "get", "--data", data, pub.Link, "-o", d1)
	testwait.Eventually(t, time.Minute, "the download verified some bytes", downloaded(t, bin, home, data, pub.Item.ID, func(n int64) bool { return n > 0 }))
	g.cmd.Process.Signal(syscall.SIGKILL)
	g.wait(t)
	part := filepath.Join(d1, ".shoal-part."+pub.Item.ID, "big.bin")
	victim := filepath.Join(root, "victim")
	victimBytes := bytes.Repeat([]byte("precious "), len(want)/9+1)[:len(want)]
	os.WriteFile(victim, victimBytes, 0o644)
	if err := os.Remove(part); err != nil {
		t.Fatalf("no partial output at %s: %v", part, err)
	}
	if err := os.Symlink(victim, part); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := shoal(t, bin, home, "get", "--data", data, pub.Link, "-o", d1)
	if got, _ := os.ReadFile(victim); !bytes.Equal(got, victimBytes) {
		t.Fatal("the resume wrote through the planted symlink")
	}
	if code != 0 {
		t.Fatalf("get after the symlink was planted: exit %d: %s", code, errOut)
	}
	if got, err := os.ReadFile(strings.TrimSpace(out)); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the output after starting over differs (%v)", err)
	}
}

// TestFailedGetsLeaveNothing covers issue 13 point 4: unknown content, no
// peers, an unwritable output and an existing file leave no library item,
// no store entry and no folder; only --background keeps trying, and
// status shows it.
func TestFailedGetsLeaveNothing(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	a, pub, _ := publishSlow(t, bin, root)
	home := filepath.Join(root, "b")
	data := filepath.Join(home, "data")
	unknown := "shoal:sh17hpp7wqitbm65dzez656c2dlrpuz6rm7tgcd54e2imydjooi3z7q?name=x.bin&peer=" + a.status.PeerID + "@" + a.status.Listen
	blocker := filepath.Join(root, "a-file")
	os.WriteFile(blocker, []byte("x"), 0o644)
	existing := filepath.Join(root, "has")
	os.MkdirAll(existing, 0o755)
	os.WriteFile(filepath.Join(existing, "big.bin"), []byte("mine"), 0o644)
	cases := []struct {
		name string
		link string
		out  string
		code int
		say  string
	}{
		{"unknown id", unknown, filepath.Join(root, "out1"), exitNoPeers, "no peer served"},
		{"no peers", "shoal:sh17hpp7wqitbm65dzez656c2dlrpuz6rm7tgcd54e2imydjooi3z7q?peer=127.0.0.1:9", filepath.Join(root, "out2"), exitNoPeers, "no peer served"},
		{"unwritable output", pub.Link, filepath.Join(blocker, "sub"), exitError, "cannot create"},
		{"existing file", pub.Link, existing, exitError, "already exists"},
	}
	for _, mode := range []string{"without a node", "with a node"} {
		var node *proc
		if mode == "with a node" {
			node = startNodeProc(t, bin, data)
		}
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				_, errOut, code := shoal(t, bin, home, "get", "--data", data, "--wait", "2s", tc.link, "-o", tc.out)
				if code != tc.code || !strings.Contains(errOut, tc.say) {
					t.Fatalf("exit %d, %q; want exit %d saying %q", code, errOut, tc.code, tc.say)
				}
				ls, _, _ := shoal(t, bin, home, "ls", "--json", "--data", data)
				if strings.TrimSpace(ls) != "[]" {
					t.Fatalf("the failed get left library items: %s", ls)
				}
				if tc.name == "existing file" {
					if b, _ := os.ReadFile(filepath.Join(existing, "big.bin")); string(b) != "mine" {
						t.Fatal("the existing file was overwritten")
					}
					if ents, _ := os.ReadDir(existing); len(ents) != 1 {
						t.Fatalf("the refused get left %d entries beside the existing file", len(ents))
					}
				} else if _, err := os.Stat(tc.out); err == nil {
					t.Fatalf("the failed get left %s behind", tc.out)
				}
				items, _ := os.ReadDir(filepath.Join(data, "store", "items"))
				if len(items) != 0 {
					t.Fatalf("the failed get left %d store entries", len(items))
				}
			})
		}
		if node != nil {
			// --background: the node keeps trying, and status says so.
			out, errOut, code := shoal(t, bin, home, "get", "--data", data, "--background", "--json", unknown, "-o", filepath.Join(root, "bg"))
			if code != 0 {
				t.Fatalf("get --background: exit %d: %s", code, errOut)
			}
			var it seed.Item
			if err := json.Unmarshal([]byte(out), &it); err != nil || it.Kind != seed.KindPartial || !it.Background {
				t.Fatalf("get --background printed %q (%v)", out, err)
			}
			st, _, _ := shoal(t, bin, home, "status", "--json", "--data", data)
			var s seed.Status
			json.Unmarshal([]byte(st), &s)
			if len(s.Downloads) != 1 || !s.Downloads[0].Background || s.Downloads[0].Stage != seed.StageSearching {
				t.Fatalf("status after get --background: %s", st)
			}
			node.stop(t)
			// The node picks it up again when it restarts.
			node = startNodeProc(t, bin, data)
			testwait.Eventually(t, time.Minute, "the restarted node resumes the background download", func() error {
				st, _, _ := shoal(t, bin, home, "status", "--json", "--data", data)
				var s seed.Status
				json.Unmarshal([]byte(st), &s)
				if len(s.Downloads) != 1 || !s.Downloads[0].Background {
					return fmt.Errorf("status %s", st)
				}
				return nil
			})
			node.stop(t)
		}
	}
}

// TestSameAnswerWithAndWithoutNode covers issue 13 point 5: exit codes,
// messages and JSON errors are the same whether a node runs or not, and
// read once.
func TestSameAnswerWithAndWithoutNode(t *testing.T) {
	bin := binary(t)
	home := t.TempDir()
	data := filepath.Join(home, "data")
	cases := []struct {
		name string
		args []string
		code int
		json string // error code
	}{
		{"bad link", []string{"get", "shoal:abc"}, exitUsage, seed.CodeBadLink},
		{"bad id", []string{"rm", "sh1abc"}, exitUsage, seed.CodeBadLink},
		{"unknown id", []string{"rm", "sh17hpp7wqitbm65dzez656c2dlrpuz6rm7tgcd54e2imydjooi3z7q"}, exitNotFound, seed.CodeNotFound},
		{"link of unknown id", []string{"link", "shoal:sh17hpp7wqitbm65dzez656c2dlrpuz6rm7tgcd54e2imydjooi3z7q"}, exitNotFound, seed.CodeNotFound},
		{"missing path", []string{"publish", filepath.Join(home, "nope")}, exitNotFound, seed.CodeNotFound},
		{"no peers", []string{"get", "--wait", "1s", "-o", filepath.Join(home, "o"), "shoal:sh17hpp7wqitbm65dzez656c2dlrpuz6rm7tgcd54e2imydjooi3z7q?peer=127.0.0.1:9"}, exitNoPeers, seed.CodeNoPeers},
	}
	type answer struct {
		code int
		msg  string
		js   string
	}
	ask := func(args []string) answer {
		full := append([]string{"--data", data}, args...)
		_, errOut, code := shoal(t, bin, home, full...)
		out, _, jcode := shoal(t, bin, home, append(full, "--json")...)
		var e struct {
			Error struct {
				Code    string
				Message string
			}
		}
		if err := json.Unmarshal([]byte(out), &e); err != nil || jcode != code {
			t.Fatalf("%v --json: exit %d, printed %q (%v)", args, jcode, out, err)
		}
		return answer{code, strings.TrimSpace(errOut), e.Error.Code}
	}
	without := map[string]answer{}
	for _, tc := range cases {
		a := ask(tc.args)
		if a.code != tc.code || a.js != tc.json {
			t.Fatalf("%s without a node: exit %d, code %q; want %d, %q (%s)", tc.name, a.code, a.js, tc.code, tc.json, a.msg)
		}
		if strings.Count(a.msg, "bad link") > 1 || strings.Contains(a.msg, "chunker:") || strings.Contains(a.msg, "seed:") {
			t.Fatalf("%s: message stutters: %q", tc.name, a.msg)
		}
		without[tc.name] = a
	}
	n := startNodeProc(t, bin, data)
	for _, tc := range cases {
		a := ask(tc.args)
		if a != without[tc.name] {
			t.Fatalf("%s: with a node %+v, without %+v", tc.name, a, without[tc.name])
		}
	}
	n.stop(t)
}

// TestInterruptWithNode: Ctrl-C on a get served by a running node stops
// the node's download too, keeps its partial hidden, and a rerun resumes
// it; several links in one get come back as a JSON array.
func TestInterruptWithNode(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	a, pub, want := publishSlow(t, bin, root)
	small := filepath.Join(root, "src", "small.txt")
	os.WriteFile(small, []byte("small\n"), 0o644)
	out, errOut, code := shoal(t, bin, filepath.Join(root, "a"), "publish", "--data", a.data, small)
	if code != 0 {
		t.Fatalf("publish small: %s", errOut)
	}
	smallLink := strings.TrimSpace(out)
	home := filepath.Join(root, "b")
	data := filepath.Join(home, "data")
	startNodeProc(t, bin, data)
	d1 := filepath.Join(root, "d1")
	g := startShoal(t, bin, home, "get", "--data", data, pub.Link, "-o", d1)
	testwait.Eventually(t, time.Minute, "the node's download verified some bytes", downloaded(t, bin, home, data, pub.Item.ID, func(n int64) bool { return n > 0 }))
	g.cmd.Process.Signal(syscall.SIGINT)
	if code := g.wait(t); code != exitError || !strings.Contains(g.stderr.String(), "resume") {
		t.Fatalf("get after SIGINT: exit %d, %q", code, g.stderr.String())
	}
	testwait.Eventually(t, time.Minute, "the node stopped the download", downloaded(t, bin, home, data, pub.Item.ID, func(n int64) bool { return n < 0 }))
	onlyPartials(t, d1)
	out, errOut, code = shoal(t, bin, home, "get", "--json", "--data", data, pub.Item.ID, smallLink, "-o", d1)
	var items []seed.Item
	if err := json.Unmarshal([]byte(out), &items); err != nil || code != 0 || len(items) != 2 {
		t.Fatalf("get of two links: exit %d, %q %q", code, out, errOut)
	}
	if got, err := os.ReadFile(items[0].Path); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the resumed download differs (%v)", err)
	}
	if got, err := os.ReadFile(items[1].Path); err != nil || string(got) != "small\n" {
		t.Fatalf("the second link's file: %q (%v)", got, err)
	}
}
