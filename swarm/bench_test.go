package swarm_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/swarm"
)

func BenchmarkMessageHave(b *testing.B) {
	idx := make([]uint32, swarm.MaxHaveBatch)
	for i := range idx {
		idx[i] = uint32(i * 7)
	}
	m := swarm.Message{Type: swarm.MsgHave, Indexes: idx}
	buf := swarm.AppendMessage(nil, m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = swarm.AppendMessage(buf[:0], m)
		if _, err := swarm.DecodeMessage(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRequest(b *testing.B) {
	r := swarm.Request{Kind: swarm.KindChunk, ID: [32]byte{1}, Index: 12345}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = swarm.AppendRequest(buf[:0], r)
		if _, err := swarm.DecodeRequest(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransfer moves a 32 MiB file (256 KiB chunks) from one seeder to
// a fresh leecher per iteration over real QUIC on loopback, in one process.
// cmd/shoal-bench measures separate processes.
func BenchmarkTransfer(b *testing.B) {
	const size = 32 << 20
	seeder := newPeer(b, swarm.ServerConfig{})
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 31 >> 7)
	}
	path := filepath.Join(seeder.dir, "file.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	pub, err := chunker.Publish(context.Background(), seeder.store, path, chunker.PublishOptions{ChunkSize: 256 << 10})
	if err != nil {
		b.Fatal(err)
	}
	it, err := seeder.store.Open(pub.ID)
	if err != nil {
		b.Fatal(err)
	}
	defer it.Close()
	seeder.srv.Seed(pub.ID, swarm.ItemSource(it))
	b.SetBytes(size)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		leecher := newPeer(b, swarm.ServerConfig{})
		d, err := swarm.NewDownload(swarm.Config{SkipParity: true}, leecher.dialer(), leecher.store, pub.ID, filepath.Join(leecher.dir, "out"+strconv.Itoa(i)))
		if err != nil {
			b.Fatal(err)
		}
		d.AddPeer(seeder.id(), seeder.addr())
		if err := d.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		d.Close()
		leecher.close()
	}
}
