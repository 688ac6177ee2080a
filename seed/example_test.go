package seed_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/shoal-p2p/shoal/seed"
)

// A program embeds two nodes: one publishes a file, the other downloads it
// by link, with progress reports.
func Example() {
	dir, _ := os.MkdirTemp("", "shoal-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// Start a node. Listen on loopback and keep the control API off, as a
	// program that embeds shoal usually does.
	publisher, err := seed.Start(seed.Config{DataDir: filepath.Join(dir, "a"), Listen: "127.0.0.1:0", API: "off"})
	if err != nil {
		log.Fatal(err)
	}
	defer publisher.Close()

	src := filepath.Join(dir, "hello.txt")
	os.WriteFile(src, bytes.Repeat([]byte("hello, swarm\n"), 100000), 0o644)
	pub, err := publisher.Publish(ctx, seed.PublishRequest{Path: src}, nil)
	if err != nil {
		log.Fatal(err)
	}

	getter, err := seed.Start(seed.Config{DataDir: filepath.Join(dir, "b"), Listen: "127.0.0.1:0", API: "off"})
	if err != nil {
		log.Fatal(err)
	}
	defer getter.Close()
	var last seed.Progress
	item, err := getter.Get(ctx, seed.GetRequest{Link: pub.Link, Out: filepath.Join(dir, "downloads")}, func(p seed.Progress) { last = p })
	if err != nil {
		log.Fatal(err)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(item.Path)
	fmt.Println(item.Name, item.Kind, item.Size, "bytes")
	fmt.Println("progress at the end:", last.Done == last.Total)
	fmt.Println("identical:", bytes.Equal(a, b))
	// Output:
	// hello.txt downloaded 1300000 bytes
	// progress at the end: true
	// identical: true
}

// A command-line tool talks to the node that runs on a data folder through
// its control API.
func ExampleDial() {
	dir, _ := os.MkdirTemp("", "shoal-example-")
	defer os.RemoveAll(dir)
	node, err := seed.Start(seed.Config{DataDir: dir, Listen: "127.0.0.1:0", API: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	client, err := seed.Dial(context.Background(), dir)
	if err != nil {
		log.Fatal(err)
	}
	st, err := client.Status(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.PeerID == node.PeerID().String(), st.Items)
	// Output: true 0
}
