package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/seed"
)

// TestHelpAndCompletion covers issue 13 point 8: help on stdout, help for
// one command, flag defaults, --version and completion scripts.
func TestHelpAndCompletion(t *testing.T) {
	bin := binary(t)
	home := t.TempDir()
	out, _, code := shoal(t, bin, home, "help")
	if code != 0 || !strings.Contains(out, "publish") || !strings.Contains(out, "Exit codes") {
		t.Fatalf("shoal help: exit %d, stdout %q", code, out)
	}
	out, _, code = shoal(t, bin, home, "help", "get")
	if code != 0 || !strings.Contains(out, "--wait duration") || !strings.Contains(out, `(default 1m0s)`) || !strings.Contains(out, "shoal get LINK...") {
		t.Fatalf("shoal help get: exit %d, stdout %q", code, out)
	}
	if out2, _, _ := shoal(t, bin, home, "get", "--help"); out2 != out {
		t.Fatalf("get --help differs from help get")
	}
	if out, _, code = shoal(t, bin, home, "--version"); code != 0 || !strings.HasPrefix(out, "shoal ") {
		t.Fatalf("--version: exit %d, %q", code, out)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out, _, code := shoal(t, bin, home, "completion", sh)
		if code != 0 || !strings.Contains(out, "shoal") || len(out) < 500 {
			t.Fatalf("completion %s: exit %d, %d bytes", sh, code, len(out))
		}
	}
	// Single-dash long flags of earlier versions still parse.
	if _, errOut, code := shoal(t, bin, home, "get", "-wait", "bogus", "sh1x"); code != exitUsage || !strings.Contains(errOut, "wait") {
		t.Fatalf("-wait bogus: exit %d, %q", code, errOut)
	}
	if _, errOut, code := shoal(t, bin, home, "get", "--nope", "sh1x"); code != exitUsage || !strings.Contains(errOut, "nope") {
		t.Fatalf("unknown flag: exit %d, %q", code, errOut)
	}
}

// TestSmallTraps covers issue 13 point 9: symlinks in a published folder
// are skipped with a warning (or followed when asked), a named config file
// that does not exist is an error, rates take units, rm --json prints
// what it removed, and ls shows links.
func TestSmallTraps(t *testing.T) {
	bin := binary(t)
	home := t.TempDir()
	data := filepath.Join(home, "data")
	src := filepath.Join(home, "tree")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "real.txt"), []byte("real\n"), 0o644)
	outside := filepath.Join(home, "outside.txt")
	os.WriteFile(outside, []byte("outside\n"), 0o644)
	os.Symlink(outside, filepath.Join(src, "link.txt"))

	out, errOut, code := shoal(t, bin, home, "publish", "--data", data, src)
	if code != 0 || !strings.Contains(errOut, "skipped") || !strings.Contains(errOut, "link.txt") {
		t.Fatalf("publish with a symlink: exit %d, stderr %q", code, errOut)
	}
	link := strings.TrimSpace(out)
	out, _, code = shoal(t, bin, home, "publish", "--json", "--follow-symlinks", "--data", data, src)
	var pubs []seed.Published
	if err := json.Unmarshal([]byte(out), &pubs); err != nil || code != 0 || len(pubs) != 1 || len(pubs[0].Skipped) != 0 || pubs[0].Item.Size != int64(len("real\n")+len("outside\n")) {
		t.Fatalf("publish --follow-symlinks: exit %d, %s", code, out)
	}

	if _, errOut, code := shoal(t, bin, home, "ls", "--data", data, "--config", filepath.Join(home, "nope.json")); code != exitNotFound || !strings.Contains(errOut, "nope.json") {
		t.Fatalf("missing --config: exit %d, %q", code, errOut)
	}
	cfg := filepath.Join(home, "config.json")
	os.WriteFile(cfg, []byte(`{"upload_limit": "50MB", "download_limit": "10MiB/s"}`), 0o644)
	if _, errOut, code := shoal(t, bin, home, "ls", "--data", data, "--config", cfg); code != 0 {
		t.Fatalf("config with units: exit %d, %q", code, errOut)
	}

	out, _, _ = shoal(t, bin, home, "ls", "--links", "--data", data)
	if !strings.Contains(out, "shoal:sh1") {
		t.Fatalf("ls --links: %q", out)
	}
	id := pubs[0].Item.ID
	out, _, code = shoal(t, bin, home, "link", "--data", data, id)
	if code != 0 || !strings.HasPrefix(out, "shoal:"+id) {
		t.Fatalf("link %s: exit %d, %q", id, code, out)
	}
	// Both spellings of an ID are accepted everywhere: rm by link.
	out, _, code = shoal(t, bin, home, "rm", "--json", "--data", data, link)
	var removed []seed.Item
	if err := json.Unmarshal([]byte(out), &removed); err != nil || code != 0 || len(removed) != 1 {
		t.Fatalf("rm --json by link: exit %d, %q", code, out)
	}
}

// TestNodeLogsDownloads covers issue 13 point 6: the node logs one line per
// download started and finished, and status shows live bytes.
func TestNodeLogsDownloads(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	_, pub, _ := publishSlow(t, bin, root)
	home := filepath.Join(root, "b")
	data := filepath.Join(home, "data")
	b := startShoal(t, bin, home, "node", "--data", data, "--listen", "127.0.0.1:0", "--api", "off")
	testwait.Eventually(t, time.Minute, "the node is up", func() error {
		_, err := os.Stat(filepath.Join(data, "api.sock"))
		return err
	})
	g := startShoal(t, bin, home, "get", "--data", data, pub.Link, "-o", filepath.Join(root, "out"))
	testwait.Eventually(t, time.Minute, "status shows live bytes", func() error {
		out, _, _ := shoal(t, bin, home, "status", "--json", "--data", data)
		var st seed.Status
		json.Unmarshal([]byte(out), &st)
		if len(st.Downloads) != 1 || st.Downloads[0].Done == 0 || st.BytesDown == 0 {
			return fmt.Errorf("status %s", out)
		}
		return nil
	})
	if code := g.wait(t); code != 0 {
		t.Fatalf("get: exit %d: %s", code, g.stderr.String())
	}
	testwait.Eventually(t, time.Minute, "the node logged the download", func() error {
		s := b.stderr.String()
		if started, finished := strings.Count(s, "download started"), strings.Count(s, "download finished"); started != 1 || finished != 1 {
			return fmt.Errorf("%d lines \"download started\", %d \"download finished\"", started, finished)
		}
		return nil
	})
}

// TestBusyPortKeepsConfiguredAddress (issue 12 item 13): a command run
// without a node, whose configured port is busy, binds another port on the
// configured address, never 0.0.0.0.
func TestBusyPortKeepsConfiguredAddress(t *testing.T) {
	bin := binary(t)
	home := t.TempDir()
	busy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := filepath.Join(home, "config.json")
	os.WriteFile(cfg, []byte(`{"listen": "`+busy.LocalAddr().String()+`"}`), 0o644)
	out, errOut, code := shoal(t, bin, home, "id", "--json", "--data", filepath.Join(home, "data"), "--config", cfg)
	var id seed.IDInfo
	if err := json.Unmarshal([]byte(out), &id); err != nil || code != 0 {
		t.Fatalf("id: exit %d, %q %q", code, out, errOut)
	}
	if !strings.HasPrefix(id.Listen, "127.0.0.1:") || id.Listen == busy.LocalAddr().String() {
		t.Fatalf("the command's node listens on %s; want another port on 127.0.0.1", id.Listen)
	}
}

// TestSearchSaysWhatHappens covers issue 13 point 6: while looking for
// peers the command says the hinted peer does not answer and what the DHT
// found, and the final error repeats it once.
func TestSearchSaysWhatHappens(t *testing.T) {
	bin := binary(t)
	home := t.TempDir()
	const peer = "4fbd399f813ebd9297a7433912af0f5f3f31c9745d5cb11dbe6d0b1bb8f7a28b"
	link := "shoal:sh17hpp7wqitbm65dzez656c2dlrpuz6rm7tgcd54e2imydjooi3z7q?name=x.bin&peer=" + peer + "@127.0.0.1:9"
	_, errOut, code := shoal(t, bin, home, "get", "--data", filepath.Join(home, "data"), "--wait", "6s", link, "-o", filepath.Join(home, "out"))
	if code != exitNoPeers {
		t.Fatalf("exit %d, want %d: %s", code, exitNoPeers, errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(errOut, "looking for peers") || !strings.Contains(last, "hinted peer 127.0.0.1:9 does not answer") ||
		!strings.Contains(last, "no bootstrap peer answered") || strings.Count(last, "x.bin") != 1 {
		t.Fatalf("stderr %q: want a search status and a last line naming the dead hint and the empty DHT once", errOut)
	}
}
