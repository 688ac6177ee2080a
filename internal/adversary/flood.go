package adversary

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/shoal-p2p/shoal/dht"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// The attacks in this file keep going until their context ends, at a
// stated rate, so that a figure harness can time an honest download while
// they run. Each returns a Flood whose Stop ends the attack, waits for it
// and reports what it sent.

// Flood is a running attack.
type Flood struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time
	closer []func()

	sent, ok, failed atomic.Int64
}

func newFlood(ctx context.Context) (*Flood, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	return &Flood{cancel: cancel, start: time.Now()}, ctx
}

// Volume is what a flood sent: Sent attempts (handshakes, dials or
// datagrams), of which OK succeeded as far as the attacker can tell and
// Failed were refused or failed, over Duration.
type Volume struct {
	Sent, OK, Failed int64
	Duration         time.Duration
}

// PerSecond is Sent per second of Duration.
func (v Volume) PerSecond() float64 {
	if v.Duration <= 0 {
		return 0
	}
	return float64(v.Sent) / v.Duration.Seconds()
}

// Sent returns how many attempts the flood made so far.
func (f *Flood) Sent() int64 { return f.sent.Load() }

// Stop ends the flood, waits for its goroutines, closes its sockets and
// returns its volume. It may be called once.
func (f *Flood) Stop() Volume {
	f.cancel()
	f.wg.Wait()
	v := Volume{Sent: f.sent.Load(), OK: f.ok.Load(), Failed: f.failed.Load(), Duration: time.Since(f.start)}
	for i := len(f.closer) - 1; i >= 0; i-- {
		f.closer[i]()
	}
	return v
}

// paced calls send rate times a second (in bursts every 10 ms) until ctx
// ends or send returns false.
func paced(ctx context.Context, rate int, send func() bool) {
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	done := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due := int(time.Since(start).Seconds() * float64(rate))
		for ; done < due; done++ {
			if ctx.Err() != nil || !send() {
				return
			}
		}
	}
}

// HalfOpenFlood keeps starting QUIC handshakes to target that never finish
// (the client stalls on the server's certificate, as HalfOpen does), at up
// to rate new handshakes a second, from one UDP socket on each of locals,
// with at most inFlight handshakes in progress per socket. A handshake is
// given up after hold (longer than the target's handshake timeout) and
// replaced. It answers QUIC Retry: it is a real client on a real address.
// Sent counts handshakes started, Failed those that ended refused or timed
// out.
func HalfOpenFlood(ctx context.Context, target netip.AddrPort, locals []string, inFlight, rate int, hold time.Duration) (*Flood, error) {
	f, ctx := newFlood(ctx)
	slots := make(chan struct{}, rate) // tokens from the pacer
	var trs []*quic.Transport
	for _, l := range locals {
		pc, err := listen(l)
		if err != nil {
			f.Stop()
			return nil, err
		}
		tr := &quic.Transport{Conn: pc}
		trs = append(trs, tr)
		f.closer = append(f.closer, func() { tr.Close(); pc.Close() })
	}
	f.wg.Go(func() {
		paced(ctx, rate, func() bool {
			select {
			case slots <- struct{}{}:
			default: // every slot busy: this token is lost
			}
			return true
		})
	})
	conf := &quic.Config{HandshakeIdleTimeout: hold}
	for _, tr := range trs {
		for range inFlight {
			f.wg.Go(func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-slots:
					}
					f.sent.Add(1)
					if halfOpenOnce(ctx, tr, target, conf, hold) {
						f.ok.Add(1)
					} else {
						f.failed.Add(1)
					}
				}
			})
		}
	}
	return f, nil
}

// halfOpenOnce starts one handshake and stalls it until hold passes or ctx
// ends; it reports whether the server got as far as sending its
// certificate.
func halfOpenOnce(ctx context.Context, tr *quic.Transport, target netip.AddrPort, conf *quic.Config, hold time.Duration) bool {
	hctx, cancel := context.WithTimeout(ctx, hold)
	defer cancel()
	var reached atomic.Bool
	tlsConf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
		NextProtos:         []string{overlay.ALPN},
		ServerName:         "shoal",
		VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error {
			reached.Store(true)
			<-hctx.Done() // stall the handshake
			return errors.New("adversary: stop")
		},
	}
	qc, err := tr.Dial(hctx, net.UDPAddrFromAddrPort(target), tlsConf, conf)
	if err == nil {
		qc.CloseWithError(0, "")
	}
	return reached.Load()
}

// ReconnectFlood dials target again and again from one identity, at up to
// rate dials a second (one at a time), each a new connection, keeping the
// ones the target leaves open. Sent counts dials, OK those that completed
// their handshake (the target may still close them at once), Failed the
// others.
func ReconnectFlood(ctx context.Context, target netip.AddrPort, local string, rate int) (*Flood, error) {
	f, ctx := newFlood(ctx)
	nd, err := overlay.New(overlay.Config{ListenAddr: local, MaxConns: 1 << 16, SocketBuffer: 1 << 20})
	if err != nil {
		return nil, err
	}
	ran := make(chan struct{})
	go func() { defer close(ran); nd.Run(context.Background()) }()
	f.closer = append(f.closer, func() { nd.Close(); <-ran })
	f.wg.Go(func() {
		paced(ctx, rate, func() bool {
			f.sent.Add(1)
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if _, err := nd.Dial(dctx, identity.PeerID{}, target); err == nil {
				f.ok.Add(1)
			} else {
				f.failed.Add(1)
			}
			return true
		})
	})
	return f, nil
}

// silentEndpoint is one throwaway DHT identity on its own socket.
type silentEndpoint struct {
	pc *net.UDPConn
	ep *ipv8.Endpoint
}

// DHTRequestFlood sends signed DHT find node requests to target at rate
// datagrams a second from identities throwaway identities, each on its own
// UDP socket bound to one of locals in turn; the identities never answer
// anything (the silent identities of DHTFlood, kept up). Sent counts
// datagrams, Failed those the socket refused.
func DHTRequestFlood(ctx context.Context, target netip.AddrPort, locals []string, identities, rate int) (*Flood, error) {
	f, ctx := newFlood(ctx)
	var eps []silentEndpoint
	f.closer = append(f.closer, func() {
		for _, e := range eps {
			e.pc.Close()
		}
	})
	for i := range identities {
		pc, err := listen(locals[i%len(locals)])
		if err != nil {
			f.Stop()
			return nil, err
		}
		eps = append(eps, silentEndpoint{pc: pc})
		kp, err := identity.Generate(nil)
		if err != nil {
			f.Stop()
			return nil, err
		}
		ep, err := ipv8.NewEndpoint(pc, ipv8.Config{Key: kp})
		if err != nil {
			f.Stop()
			return nil, err
		}
		eps[i].ep = ep
	}
	f.wg.Go(func() {
		var tx uint32
		paced(ctx, rate, func() bool {
			tx++
			var k dht.Key
			rand.Read(k[:])
			m := dht.Message{Type: dht.MsgFindNode, TxID: tx, Target: k}
			e := eps[int(tx)%len(eps)]
			f.sent.Add(1)
			if err := e.ep.Send(target, ipv8.CommunityID(dht.CommunityID), dht.IPv8MessageID, m.Append(nil)); err != nil {
				f.failed.Add(1)
			}
			return true
		})
	})
	return f, nil
}

// ReplayFlood sends the captured datagram b to target at rate copies a
// second, from sockets sockets bound to locals in turn (each copy seen from
// an address the original never came from). Sent counts copies.
func ReplayFlood(ctx context.Context, b []byte, target netip.AddrPort, locals []string, sockets, rate int) (*Flood, error) {
	f, ctx := newFlood(ctx)
	var pcs []*net.UDPConn
	f.closer = append(f.closer, func() {
		for _, pc := range pcs {
			pc.Close()
		}
	})
	for i := range sockets {
		pc, err := listen(locals[i%len(locals)])
		if err != nil {
			f.Stop()
			return nil, err
		}
		pcs = append(pcs, pc)
	}
	f.wg.Go(func() {
		i := 0
		paced(ctx, rate, func() bool {
			i++
			f.sent.Add(1)
			if _, err := pcs[i%len(pcs)].WriteToUDPAddrPort(b, target); err != nil {
				f.failed.Add(1)
			}
			return true
		})
	})
	return f, nil
}
