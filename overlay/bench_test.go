package overlay

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/shoal-p2p/shoal/internal/cputime"
	"github.com/shoal-p2p/shoal/internal/netem"
)

// bulkSize is the bytes sent on one stream per iteration of
// BenchmarkBulkStream.
const bulkSize = 256 << 20

// BenchmarkBulkStream sends one bulk stream over loopback, between two
// overlay nodes (tuned) and, in the same run, between plain quic-go
// endpoints with default settings and a throwaway self-signed certificate.
// Compare the MB/s of the two sub-benchmarks:
//
//	go test -run='^$' -bench=BulkStream -count=5 ./overlay
//
// On a shared machine the two sub-benchmarks run minutes apart; for a
// ratio measured side by side, see TestBulkRatio.
func BenchmarkBulkStream(b *testing.B) {
	for _, pair := range []struct {
		name string
		open func(testing.TB, time.Duration) bulkPair
	}{{"overlay", openOverlayPair}, {"quic-default", openPlainPair}} {
		b.Run(pair.name, func(b *testing.B) {
			p := pair.open(b, 0)
			b.SetBytes(bulkSize)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cputime.Process()
			for range b.N {
				p.send(b, bulkSize)
			}
			// CPU of both ends per MB: steadier than MB/s on a busy machine.
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N)/(bulkSize/1e6), "cpu-ns/MB")
		})
	}
}

// TestBulkRatio alternates bulk streams between the tuned overlay pair and
// the plain quic-go pair, so that both see the same machine load, and logs
// the median MB/s of each, the ratio of the medians and the median of the
// per-round ratios (robust to load that changes between rounds). It runs only with SHOAL_BENCH=1
// (rounds from SHOAL_BENCH_ROUNDS, default 7):
//
//	SHOAL_BENCH=1 go test -run=TestBulkRatio -v ./overlay
func TestBulkRatio(t *testing.T) {
	if os.Getenv("SHOAL_BENCH") != "1" {
		t.Skip("set SHOAL_BENCH=1 to measure")
	}
	rounds := 7
	if r, err := strconv.Atoi(os.Getenv("SHOAL_BENCH_ROUNDS")); err == nil && r > 0 {
		rounds = r
	}
	size := bulkSize
	var delay time.Duration
	if d, err := time.ParseDuration(os.Getenv("SHOAL_BENCH_DELAY")); err == nil && d > 0 {
		delay = d // one-way, through internal/netem: no GSO, so a lower ceiling
		size = 64 << 20
	}
	pairs := []struct {
		name  string
		p     bulkPair
		rates []float64 // MB/s
		cpu   []float64 // CPU ns per MB, both ends
	}{{"overlay", openOverlayPair(t, delay), nil, nil}, {"quic-default", openPlainPair(t, delay), nil, nil}}
	for i := range rounds {
		for j := range pairs {
			x := &pairs[(i+j)%2] // alternate who goes first
			start, cpu0 := time.Now(), cputime.Process()
			x.p.send(t, size)
			x.rates = append(x.rates, float64(size)/time.Since(start).Seconds()/1e6)
			x.cpu = append(x.cpu, float64(cputime.Process()-cpu0)/(float64(size)/1e6))
		}
	}
	var ratios []float64 // per round: the two runs were adjacent in time
	for i := range rounds {
		ratios = append(ratios, pairs[0].rates[i]/pairs[1].rates[i])
	}
	for _, x := range pairs {
		t.Logf("%-12s MB/s %v median %.1f; CPU ms/MB median %.2f", x.name, rounded(x.rates), median(x.rates), median(x.cpu)/1e6)
	}
	t.Logf("ratio of medians overlay/quic-default %.2f; median of per-round ratios %.2f",
		median(pairs[0].rates)/median(pairs[1].rates), median(ratios))
}

// bulkPair is a sender and a receiver connected over loopback.
type bulkPair interface {
	// send writes size bytes on a new stream, closes it and waits until
	// the receiver has read them all.
	send(tb testing.TB, size int)
}

type overlayPair struct {
	src, dst *Node
	done     chan error
}

// openOverlayPair connects two nodes with default (tuned) settings; a
// positive delay puts both behind internal/netem with that one-way delay.
func openOverlayPair(tb testing.TB, delay time.Duration) bulkPair {
	p := &overlayPair{
		src:  newNode(tb, Config{PacketConn: benchConn(tb, delay)}),
		dst:  newNode(tb, Config{PacketConn: benchConn(tb, delay)}),
		done: make(chan error, 1),
	}
	p.dst.Handle(tagSink, func(ctx context.Context, c *Conn, s *quic.Stream) {
		_, err := io.Copy(io.Discard, s)
		p.done <- err
	})
	if _, err := p.src.Dial(context.Background(), p.dst.PeerID(), p.dst.LocalAddr()); err != nil {
		tb.Fatal(err)
	}
	return p
}

func (p *overlayPair) send(tb testing.TB, size int) {
	s, err := p.src.OpenStream(context.Background(), p.dst.PeerID(), p.dst.LocalAddr(), tagSink)
	if err != nil {
		tb.Fatal(err)
	}
	sendBulk(tb, s, size, p.done)
}

type plainPair struct {
	qc   *quic.Conn
	done chan error
}

// openPlainPair connects two plain quic-go endpoints with default
// configuration (quic-go still raises the UDP buffers itself); a positive
// delay puts both behind internal/netem.
func openPlainPair(tb testing.TB, delay time.Duration) bulkPair {
	ctx, cancel := context.WithCancel(context.Background())
	cert, err := newCertificate(mustKey(tb))
	if err != nil {
		tb.Fatal(err)
	}
	srv := &quic.Transport{Conn: benchConn(tb, delay)}
	cli := &quic.Transport{Conn: benchConn(tb, delay)}
	ln, err := srv.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"bench"}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	p := &plainPair{done: make(chan error, 1)}
	served := make(chan struct{})
	go func() {
		defer close(served)
		qc, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		defer qc.CloseWithError(0, "")
		for {
			s, err := qc.AcceptStream(ctx)
			if err != nil {
				return
			}
			_, err = io.Copy(io.Discard, s)
			p.done <- err
		}
	}()
	p.qc, err = cli.Dial(ctx, ln.Addr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"bench"}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.qc.CloseWithError(0, "")
		cancel()
		ln.Close()
		<-served
		cli.Close()
		srv.Close()
		cli.Conn.Close()
		srv.Conn.Close()
	})
	return p
}

func (p *plainPair) send(tb testing.TB, size int) {
	s, err := p.qc.OpenStreamSync(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	sendBulk(tb, s, size, p.done)
}

// benchConn binds a loopback UDP socket, behind netem when delay > 0.
func benchConn(tb testing.TB, delay time.Duration) net.PacketConn {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	if delay <= 0 {
		return udp
	}
	pc, err := netem.Wrap(udp, netem.Config{Delay: delay, QueueLimit: 1 << 17})
	if err != nil {
		tb.Fatal(err)
	}
	return pc
}

func sendBulk(tb testing.TB, s *quic.Stream, size int, done <-chan error) {
	buf := make([]byte, 1<<20)
	for sent := 0; sent < size; sent += len(buf) {
		if _, err := s.Write(buf); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func rounded(xs []float64) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x + 0.5)
	}
	return out
}
