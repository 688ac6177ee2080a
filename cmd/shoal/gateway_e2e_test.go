package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-p2p/shoal/seed"
)

// TestReadCommands runs real shoal processes: A publishes a folder; B (a
// node with its gateway on) lists it (manifest only), cats a file and a
// range of it, gets only some files, and serves a range over its gateway
// to net/http and to curl.
func TestReadCommands(t *testing.T) {
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
	link, id := pubs[0].Link, pubs[0].Item.ID
	b := startNodeProcArgs(t, bin, filepath.Join(root, "b", "data"), "-bootstrap", a.status.Listen, "-gateway", "127.0.0.1:0", "--gateway-cache", "64MiB")
	if b.status.Gateway == "" {
		t.Fatalf("node B has no gateway: %+v", b.status)
	}
	home := filepath.Join(root, "b")
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := shoal(t, bin, home, append(args, "--data", b.data)...)
		if code != 0 {
			t.Fatalf("shoal %v: exit %d: %s", args, code, errOut)
		}
		return out
	}

	// ls LINK: the files, and no download started.
	var l seed.Listing
	if err := json.Unmarshal([]byte(run("ls", "--json", link)), &l); err != nil || len(l.Files) != len(files) {
		t.Fatalf("ls LINK: %+v, %v", l, err)
	}
	for _, f := range l.Files {
		if int64(len(files[f.Path])) != f.Size {
			t.Fatalf("ls LINK: %+v; the file has %d bytes", f, len(files[f.Path]))
		}
	}
	if st := run("ls", "--json"); strings.Contains(st, id) {
		t.Fatalf("ls LINK added %s to the library", id)
	}

	// cat: a file of the folder, a range, the last bytes (by bare ID: DHT).
	if got := run("cat", link+"/docs/readme.txt"); got != string(files["docs/readme.txt"]) {
		t.Fatalf("cat of a file: %q", got)
	}
	big := files["big.bin"]
	if got := run("cat", id+"/big.bin", "--range", "1000-1099999"); got != string(big[1000:1100000]) {
		t.Fatalf("cat --range: %d bytes, not the range", len(got))
	}
	if got := run("cat", id+"/big.bin", "--range", "-5000"); got != string(big[len(big)-5000:]) {
		t.Fatalf("cat --range -5000: %d bytes", len(got))
	}
	if _, errOut, code := shoal(t, bin, home, "cat", "--data", b.data, id+"/nope.txt"); code != 3 {
		t.Fatalf("cat of a missing file: exit %d (%s), want 3 (not found)", code, errOut)
	}

	// The cats left an on-demand download on B (it stops 30 s after its
	// last reader): the controls reach it; cancelled, it is gone.
	run("pause", id)
	run("limit", id, "5MB/s")
	run("resume", id)
	if _, errOut, code := shoal(t, bin, home, "limit", "--data", b.data, id, "fast"); code != 2 {
		t.Fatalf("limit with a bad rate: exit %d (%s), want 2", code, errOut)
	}
	run("cancel", id)
	if _, errOut, code := shoal(t, bin, home, "pause", "--data", b.data, id); code != 3 {
		t.Fatalf("pause with no download: exit %d (%s), want 3", code, errOut)
	}

	// get --only: the matching files only, nothing else in the folder.
	dst := filepath.Join(root, "b", "only")
	run("get", link, "-o", dst, "--only", "docs/*", "--only", "*.sh")
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dst, "release", name))
		switch {
		case name == "big.bin" || name == "docs/deep/x.bin":
			if err == nil {
				t.Fatalf("get --only wrote %s", name)
			}
		case err != nil || !bytes.Equal(got, want):
			t.Fatalf("get --only: %s: %v", name, err)
		}
	}

	// What get --only fetched is in the gateway cache: ls shows it, rm
	// deletes it.
	if ls := run("ls"); !strings.Contains(ls, id) || !strings.Contains(ls, "cache (") {
		t.Fatalf("ls does not show the gateway cache item %s:\n%s", id, ls)
	}
	if out, errOut, code := shoal(t, bin, home, "rm", "--data", b.data, id); code != 0 || !strings.Contains(out+errOut, "gateway cache") {
		t.Fatalf("rm of a cache item: exit %d: %s%s", code, out, errOut)
	}
	if ls := run("ls", "--json"); strings.Contains(ls, id) {
		t.Fatalf("rm left %s listed:\n%s", id, ls)
	}
	if _, err := os.Stat(filepath.Join(b.data, "gateway", id)); !os.IsNotExist(err) {
		t.Fatalf("rm left the cache folder: %v", err)
	}

	// The gateway, through net/http and curl.
	url := "http://" + b.status.Gateway + "/shoal/" + id + "/big.bin"
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Range", "bytes=4000000-4999999")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 206 || !bytes.Equal(body, big[4000000:5000000]) {
		t.Fatalf("gateway range: %d, %d bytes, %v", resp.StatusCode, len(body), err)
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Log("curl not installed: the gateway was read with net/http only")
		return
	}
	c := exec.Command(curl, "-sf", "-r", "0-99", url)
	got, err := c.Output()
	if err != nil || !bytes.Equal(got, big[:100]) {
		t.Fatalf("curl -r 0-99: %v, %d bytes", err, len(got))
	}
}
