package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/shoal-p2p/shoal/internal/cputime"
)

// The quic-go reference: one process accepts one stream and drains it, the
// other sends size bytes on one stream; both plain quic-go with the same
// flow-control windows as shoal's overlay defaults.

const refALPN = "shoal-bench-ref"

func refQUICConfig() *quic.Config {
	return &quic.Config{
		InitialStreamReceiveWindow:     2 << 20,
		MaxStreamReceiveWindow:         16 << 20,
		InitialConnectionReceiveWindow: 4 << 20,
		MaxConnectionReceiveWindow:     32 << 20,
	}
}

func runRefServer(listen string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}}, NextProtos: []string{refALPN}}
	ln, err := quic.ListenAddr(listen, tc, refQUICConfig())
	if err != nil {
		return err
	}
	defer ln.Close()
	cpu0 := cputime.Process().Seconds()
	fmt.Printf("READY %s\n", ln.Addr())
	ctx := context.Background()
	conn, err := ln.Accept(ctx)
	if err != nil {
		return err
	}
	st, err := conn.AcceptStream(ctx)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, st)
	if err != nil {
		return err
	}
	fmt.Printf("CPU %f\n", cputime.Process().Seconds()-cpu0)
	if _, err := fmt.Fprintf(st, "%d\n", n); err != nil {
		return err
	}
	st.Close()
	<-conn.Context().Done()
	return nil
}

func runRefClient(addr string, size int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tc := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{refALPN}}
	start, cpu0 := time.Now(), cputime.Process().Seconds()
	conn, err := quic.DialAddr(ctx, addr, tc, refQUICConfig())
	if err != nil {
		return err
	}
	defer conn.CloseWithError(0, "")
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	for sent := int64(0); sent < size; {
		n := min(int64(len(buf)), size-sent)
		if _, err := st.Write(buf[:n]); err != nil {
			return err
		}
		sent += n
	}
	st.Close()
	var got int64
	if _, err := fmt.Fscanf(st, "%d\n", &got); err != nil {
		return err
	}
	if got != size {
		return errors.New("reference server counted a different size")
	}
	if os.Getenv("SHOAL_BENCH_DEBUG") != "" {
		printConnStats("quicref-client", conn)
	}
	fmt.Printf("DONE %f %f\n", time.Since(start).Seconds(), cputime.Process().Seconds()-cpu0)
	return nil
}
