package swarm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/swarm"
)

// readRange reads [off, off+n) through a new reader of d.
func readRange(t *testing.T, d *swarm.Download, off, n int64) []byte {
	t.Helper()
	r, err := d.NewReader(off, n, 256<<10)
	if err != nil {
		t.Fatalf("NewReader(%d, %d): %v", off, n, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading %d+%d: %v", off, n, err)
	}
	return b
}

// An on-demand download fetches the stripes a reader needs, and only those
// (plus read-ahead), and the bytes are right.
func TestReaderOnDemand(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seeder := newPeer(t, swarm.ServerConfig{})
	c := publish(t, seeder, 8<<20+1000, 11) // 513 data chunks of 16 KiB, 129 stripes
	leecher := newPeer(t, swarm.ServerConfig{})
	d, err := swarm.NewDownload(swarm.Config{Server: leecher.srv}, leecher.dialer(), leecher.store, c.id, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d.SetOnDemand(true)
	d.AddPeer(seeder.id(), seeder.addr())
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()
	defer func() {
		stop()
		<-done
		d.Close()
	}()
	m, err := d.Manifest(ctx)
	if err != nil {
		t.Fatalf("Manifest: %v", err)
	}
	if m.Size != int64(len(c.data)) {
		t.Fatalf("manifest size %d, want %d", m.Size, len(c.data))
	}
	off, n := int64(len(c.data))-300_000, int64(200_000)
	if got := readRange(t, d, off, n); !bytes.Equal(got, c.data[off:off+n]) {
		t.Fatalf("bytes %d+%d differ from the published file", off, n)
	}
	// 200 kB from near the end, with 256 KiB read-ahead: a few stripes of
	// 64 KiB, far from all 129.
	if f := d.Progress().Fetched; f == 0 || f > 40 {
		t.Fatalf("on-demand read fetched %d chunks; want a few (the range and its read-ahead)", f)
	}
	// Several readers at once share the download.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			off := int64(i) * 2 << 20
			if got := readRange(t, d, off, 1<<20); !bytes.Equal(got, c.data[off:off+1<<20]) {
				t.Errorf("reader %d: bytes differ", i)
			}
		})
	}
	wg.Wait()
	if d.Readers() != 0 {
		t.Fatalf("%d readers left after Close", d.Readers())
	}
}

// A reader of a whole download in progress gets every byte; Close wakes a
// blocked Read; a paused download fetches nothing until resumed.
func TestReaderPauseResumeClose(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seeder := newPeer(t, swarm.ServerConfig{})
	c := publish(t, seeder, 3<<20+5, 12)
	leecher := newPeer(t, swarm.ServerConfig{})
	d, err := swarm.NewDownload(swarm.Config{Server: leecher.srv}, leecher.dialer(), leecher.store, c.id, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d.Pause()
	d.AddPeer(seeder.id(), seeder.addr())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer d.Close()
	if _, err := d.Manifest(ctx); err != nil {
		t.Fatalf("Manifest: %v", err)
	}
	r, err := d.NewReader(0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 10))
		readErr <- err
	}()
	r.Close()
	if err := <-readErr; !errors.Is(err, swarm.ErrClosed) {
		t.Fatalf("Read on a paused download after Close = %v, want ErrClosed", err)
	}
	if f := d.Progress().Fetched; f != 0 {
		t.Fatalf("paused download fetched %d chunks", f)
	}
	d.Resume()
	if got := readRange(t, d, 0, int64(len(c.data))); !bytes.Equal(got, c.data) {
		t.Fatalf("whole-file read differs")
	}
	waitRun(t, "download", done, 30*time.Second)
	checkOutput2(t, d, c)
}

func checkOutput2(t *testing.T, d *swarm.Download, c content) {
	t.Helper()
	if p := d.Progress(); !p.Done || p.Verified != int64(len(c.data)) {
		t.Fatalf("progress %+v, want done", p)
	}
}

// A reader's chunks pass a rate cap first: reading the last 64 KiB of a
// file capped at 1 MB/s comes long before the whole file could.
func TestReaderUrgentUnderCap(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seeder := newPeer(t, swarm.ServerConfig{})
	c := publish(t, seeder, 4<<20, 13)
	leecher := newPeer(t, swarm.ServerConfig{})
	d, err := swarm.NewDownload(swarm.Config{Server: leecher.srv}, leecher.dialer(), leecher.store, c.id, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d.SetRateLimit(1 << 20)
	d.AddPeer(seeder.id(), seeder.addr())
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()
	defer func() {
		stop()
		<-done
		d.Close()
	}()
	if _, err := d.Manifest(ctx); err != nil {
		t.Fatalf("Manifest: %v", err)
	}
	off := int64(len(c.data)) - 64<<10
	if got := readRange(t, d, off, 64<<10); !bytes.Equal(got, c.data[off:]) {
		t.Fatalf("tail bytes differ")
	}
	// At 1 MiB/s the whole 4 MiB takes 4 s; the tail must arrive while
	// most of the file is still missing.
	if p := d.Progress(); p.Done || p.Verified > int64(len(c.data))*3/4 {
		t.Fatalf("the tail came only after %d of %d bytes: the reader was not served first", p.Verified, len(c.data))
	}
}

// A wanted data chunk that no peer has is rebuilt from parity: the reader
// gets the right bytes through decoding, and the on-demand download fetched
// parity for it.
func TestReaderDecodesThroughParity(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publisher := newPeer(t, swarm.ServerConfig{})
	c := publish(t, publisher, 2<<20, 14) // 16 KiB chunks, 4+2 stripes
	publisher.srv.Unseed(c.id)
	seeder := newPeer(t, swarm.ServerConfig{})
	// The seeder lacks the first data chunk of every stripe.
	seedPart(t, seeder, publisher, c, func(i int) bool { _, pos := c.man.StripeOf(i); return pos != 0 })
	leecher := newPeer(t, swarm.ServerConfig{})
	d, err := swarm.NewDownload(swarm.Config{Server: leecher.srv}, leecher.dialer(), leecher.store, c.id, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d.SetOnDemand(true)
	d.AddPeer(seeder.id(), seeder.addr())
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()
	defer func() {
		stop()
		<-done
		d.Close()
	}()
	if _, err := d.Manifest(ctx); err != nil {
		t.Fatalf("Manifest: %v", err)
	}
	// Stripe 5 starts at data chunk 20 (byte 20*16 KiB); read its first chunk.
	off := int64(20 * 16 << 10)
	r, err := d.NewReader(off, 16<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, c.data[off:off+16<<10]) {
		t.Fatalf("read through parity: %v, %d bytes", err, len(got))
	}
	parity := 0
	have := d.Chunker().Have()
	for i := range c.man.NumChunks() {
		if have.Has(i) && c.man.IsParity(i) {
			parity++
		}
	}
	if parity == 0 {
		t.Fatalf("no parity chunk held: the missing chunk was not rebuilt from parity")
	}
}
