package seed

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestChunksMoveOverTCP: two nodes on loopback, a 24 MiB file published on
// one and fetched by link on the other. With TCP on (the default) the
// chunk streams move to the TCP session once it is up, so the publisher
// serves chunks there; with NoTCP on either side everything stays on QUIC
// and the download is the same.
func TestChunksMoveOverTCP(t *testing.T) {
	for _, tc := range []struct {
		name          string
		pubNoTCP, get bool
		wantTCP       bool
	}{
		{"both", false, false, true},
		{"publisher without TCP", true, false, false},
		{"getter without TCP", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dir := t.TempDir()
			pub, err := Start(Config{DataDir: filepath.Join(dir, "a"), Listen: "127.0.0.1:0", API: "off", Gateway: "off", NoTCP: tc.pubNoTCP})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			src := filepath.Join(dir, "src.bin")
			data := make([]byte, 24<<20)
			rand.Read(data)
			if err := os.WriteFile(src, data, 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := pub.Publish(ctx, PublishRequest{Path: src}, nil)
			if err != nil {
				t.Fatal(err)
			}
			get, err := Start(Config{DataDir: filepath.Join(dir, "b"), Listen: "127.0.0.1:0", API: "off", Gateway: "off", NoTCP: tc.get})
			if err != nil {
				t.Fatal(err)
			}
			defer get.Close()
			item, err := get.Get(ctx, GetRequest{Link: p.Link, Out: filepath.Join(dir, "out")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(item.Path)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("downloaded file differs (%v)", err)
			}
			st := pub.ov.Stats().TCP
			if tc.wantTCP && st.Streams == 0 {
				t.Fatalf("publisher served no chunk over TCP: %+v", st)
			}
			if !tc.wantTCP && st.Streams != 0 {
				t.Fatalf("publisher served %d streams over TCP with TCP off on one side", st.Streams)
			}
			t.Logf("publisher TCP: %+v", st)
		})
	}
}
