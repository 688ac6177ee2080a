package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/testwait"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
	"github.com/shoal-p2p/shoal/seed"
)

// TestBootstrapPeerInShoalPeers: a node started with another node as its
// bootstrap address lists that node in `shoal peers` once it answered as a
// full peer (issue 16 item 4), and the bootstrap node lists it back. Real
// processes; no download, so no QUIC connection lists them instead.
func TestBootstrapPeerInShoalPeers(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	a := startNodeProc(t, bin, filepath.Join(root, "a", "data"))
	b := startNodeProc(t, bin, filepath.Join(root, "b", "data"), a.status.Listen)
	lists := func(p *proc, home string, want seed.Status) bool {
		out, errOut, code := shoal(t, bin, filepath.Join(root, home), "peers", "--json", "--data", p.data)
		if code != 0 {
			t.Fatalf("shoal peers: exit %d: %s", code, errOut)
		}
		var peers []seed.PeerInfo
		if err := json.Unmarshal([]byte(out), &peers); err != nil {
			t.Fatalf("shoal peers printed %q: %v", out, err)
		}
		for _, pi := range peers {
			if pi.PeerID == want.PeerID && pi.Addr == want.Listen {
				return true
			}
		}
		return false
	}
	testwait.Eventually(t, 30*time.Second, "a and b list each other", func() error {
		if ba, ab := lists(b, "b", a.status), lists(a, "a", b.status); !ba || !ab {
			return fmt.Errorf("b lists its bootstrap node a: %v; a lists b: %v", ba, ab)
		}
		return nil
	})
}

// TestIntroductionRequestLANAddress: the LAN address in a real shoal
// node's introduction requests is its socket's address, and for a
// wildcard bind the interface address that reaches the peer (issue 16
// item 3: it used to be 0.0.0.0:0). A raw UDP socket plays the bootstrap
// node and reads the requests.
func TestIntroductionRequestLANAddress(t *testing.T) {
	bin := binary(t)
	for _, listen := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		t.Run(listen, func(t *testing.T) {
			boot, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer boot.Close()
			p := startNodeProcArgs(t, bin, filepath.Join(t.TempDir(), "data"), "-listen", listen, "-bootstrap", boot.LocalAddr().String())
			sock, err := netip.ParseAddrPort(p.status.Listen)
			if err != nil {
				t.Fatalf("node status listen %q: %v", p.status.Listen, err)
			}
			want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), sock.Port())
			boot.SetReadDeadline(time.Now().Add(30 * time.Second))
			buf := make([]byte, 2048)
			for {
				n, from, err := boot.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("no introduction request from the node: %v", err)
				}
				_, id, _, err := ipv8.ParseHeader(buf[:n])
				if err != nil || (id != ipv8.MsgIntroRequest && id != ipv8.MsgIntroRequestOld) {
					continue // DHT and other datagrams
				}
				m, err := ipv8.Decode(buf[:n], ipv8.FramingSigned)
				if err != nil {
					t.Fatalf("introduction request from %s does not decode: %v", from, err)
				}
				r, err := ipv8.DecodeIntroRequest(m.ID, m.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if r.SourceLAN != want || r.SourceWAN != want {
					t.Fatalf("node bound to %s (socket %s) announces LAN %s WAN %s, want %s", listen, sock, r.SourceLAN, r.SourceWAN, want)
				}
				return
			}
		})
	}
}
