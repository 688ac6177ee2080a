package seed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRestartAfterCrashInInstall: a get is interrupted after its output
// reached its final path but before the library recorded it finished (the
// library says partial, as a crash would leave it), at each of install's
// steps. A new node on the same data folder recognises the output (checked
// against the leaf layer), lists it as downloaded at that path, seeds it
// (a third node fetches it from this one alone), and the same get answers
// with the item instead of "already exists". An output that does not match
// is left alone and still listed as partial.
func TestRestartAfterCrashInInstall(t *testing.T) {
	for _, step := range []string{"renamed", "moved", "noname", "tampered"} {
		t.Run(step, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			pub := startNode(t)
			src := filepath.Join(t.TempDir(), "tree")
			files := writeTree(t, src, 7)
			p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			out := t.TempDir()
			hookStep, link := step, p.Link
			if step == "tampered" || step == "noname" {
				hookStep = "renamed"
			}
			if step == "noname" { // the library learns the name from the manifest only
				l, _ := ParseLink(p.Link)
				l.Name = ""
				link = l.String()
			}
			testHookInstall = func(s string) error {
				if s == hookStep {
					return errors.New("simulated crash")
				}
				return nil
			}
			defer func() { testHookInstall = func(string) error { return nil } }()
			n1, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0", API: "off", Gateway: "off"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := n1.Get(ctx, GetRequest{Link: link, Out: out}, nil); err == nil {
				t.Fatal("Get succeeded through a simulated crash")
			}
			n1.Close()
			testHookInstall = func(string) error { return nil }
			final := filepath.Join(out, "tree")
			checkTree(t, final, files) // the output is at its final path ...
			lib, err := openLibrary(dir)
			if err != nil {
				t.Fatal(err)
			}
			it, _ := lib.get(p.Item.ID)
			if it.Kind != KindPartial {
				t.Fatalf("after the crash the library says %q, want partial (the state under test)", it.Kind)
			}
			if step == "noname" {
				// As preparePart recorded it before the manifest was known.
				it.Name, it.Path, it.Size = "", out, 0
				if err := lib.put(it); err != nil {
					t.Fatal(err)
				}
			}
			if step == "tampered" {
				if err := os.WriteFile(filepath.Join(final, "sub", "b.txt"), []byte("hello SHOAL\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			pub.Close() // from now on only the restarted node has the content

			n2, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0", API: "off", Gateway: "off"})
			if err != nil {
				t.Fatal(err)
			}
			defer n2.Close()
			items, _ := n2.Items(ctx)
			if len(items) != 1 {
				t.Fatalf("restarted library: %+v, want the one item", items)
			}
			if step == "tampered" {
				if items[0].Kind != KindPartial {
					t.Fatalf("an output that does not match is listed as %q, want partial", items[0].Kind)
				}
				if _, err := n2.Get(ctx, GetRequest{Link: p.Link, Out: out}, nil); !errors.Is(err, ErrExists) {
					t.Fatalf("get over an output that does not match: %v, want ErrExists", err)
				}
				return
			}
			it = items[0]
			if it.Kind != KindDownloaded || it.Path != final || it.Partial != "" {
				t.Fatalf("restarted library: %+v, want downloaded at %s", it, final)
			}
			if _, err := os.Stat(filepath.Join(out, partialPrefix+p.Item.ID)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the partial folder is still there: %v", err)
			}
			again, err := n2.Get(ctx, GetRequest{Link: link, Out: out}, nil)
			if err != nil || again.Path != final || again.Kind != KindDownloaded {
				t.Fatalf("the same get after the restart: %+v, %v; want the item at %s", again, err, final)
			}
			// It seeds: a third node fetches it from the restarted node alone.
			c := startNode(t)
			fromN2 := n2.linkOf(mustID(t, p.Item.ID), "tree")
			cOut := t.TempDir()
			if _, err := c.Get(ctx, GetRequest{Link: fromN2, Out: cOut}, nil); err != nil {
				t.Fatalf("get from the restarted node: %v", err)
			}
			checkTree(t, filepath.Join(cOut, "tree"), files)
		})
	}
}
