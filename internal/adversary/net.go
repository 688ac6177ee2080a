package adversary

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

// HalfOpen starts n QUIC handshakes to target from one UDP socket bound to
// local (e.g. "127.0.0.1:0") that never finish: each client stalls on the
// server's certificate, so it never sends its own certificate and Finished
// and the target holds a half-open connection until its handshake timeout.
// It answers QUIC Retry (it is a real client on a real address). It returns
// at once; stop ends every handshake, closes the socket and waits.
func HalfOpen(target netip.AddrPort, local string, n int) (stop func(), err error) {
	pc, err := listen(local)
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: pc}
	ctx, cancel := context.WithCancel(context.Background())
	tlsConf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
		NextProtos:         []string{overlay.ALPN},
		ServerName:         "shoal",
		VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error {
			<-ctx.Done() // stall the handshake
			return errors.New("adversary: stop")
		},
	}
	conf := &quic.Config{HandshakeIdleTimeout: time.Hour}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			qc, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(target), tlsConf, conf)
			if err == nil {
				qc.CloseWithError(0, "")
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
		tr.Close()
		pc.Close()
	}, nil
}

// Identities opens n connections to target, each from a fresh throwaway
// identity with its own socket bound to local, and holds them open. It
// returns how many the target accepted; stop closes them all.
func Identities(ctx context.Context, target netip.AddrPort, local string, n int) (opened int, stop func(), err error) {
	var nodes []*overlay.Node
	stop = func() {
		for _, nd := range nodes {
			nd.Close()
		}
	}
	for range n {
		nd, err := overlay.New(overlay.Config{ListenAddr: local, MaxConns: 4})
		if err != nil {
			stop()
			return 0, nil, err
		}
		nodes = append(nodes, nd)
		if _, err := nd.Dial(ctx, identity.PeerID{}, target); err == nil {
			opened++
		}
	}
	return opened, stop, nil
}

// Reconnects opens n connections to target from one identity (a zero-peer
// dial never reuses a connection) and holds them. It returns how many the
// target accepted; stop closes them.
func Reconnects(ctx context.Context, target netip.AddrPort, local string, n int) (opened int, stop func(), err error) {
	nd, err := overlay.New(overlay.Config{ListenAddr: local, MaxConns: n + 1})
	if err != nil {
		return 0, nil, err
	}
	for range n {
		if _, err := nd.Dial(ctx, identity.PeerID{}, target); err == nil {
			opened++
		}
	}
	return opened, func() { nd.Close() }, nil
}

func listen(local string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", local)
	if err != nil {
		return nil, err
	}
	return net.ListenUDP("udp", ua)
}
