package ipv8

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

var update = flag.Bool("update", false, "rewrite testdata/ipv8 golden files")

const goldenPath = "../../testdata/ipv8/discovery.golden"

// discoveryCommunity is py-ipv8's discovery community ID.
var discoveryCommunity = MustCommunityID("7e313685c1912a141279f8248fc8db5899c5df5a")

// fixedKey is LibNaCLSK: followed by the bytes 0x01..0x40.
func fixedKey(t testing.TB) *identity.KeyPair {
	t.Helper()
	sk := []byte("LibNaCLSK:")
	for i := 1; i <= 64; i++ {
		sk = append(sk, byte(i))
	}
	kp, err := identity.ParseSecretKey(sk)
	if err != nil {
		t.Fatalf("ParseSecretKey: %v", err)
	}
	return kp
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

type vector struct {
	name   string
	signed bool
	gt     uint64
	msgID  byte
	build  func() ([]byte, error)
	decode func(msgID byte, p []byte) (any, error)
	want   any
	size   int // expected datagram size, 0 when not pinned by the spec
}

func goldenVectors() []vector {
	req := IntroRequest{
		Destination: ap("1.2.3.4:5678"), SourceLAN: ap("192.168.1.10:8090"), SourceWAN: ap("80.100.1.2:8090"),
		ConnType: ConnUnknown, SupportsNewStyle: true, Advice: true, Identifier: 0x1234,
	}
	reqNew := req
	reqNew.NewStyle = true
	reqNew6 := reqNew
	reqNew6.Destination = ap("[2001:db8::1]:5678")
	reqNew6.ConnType = ConnPublic
	reqNew6.Extra = []byte("extra")
	resp := IntroResponse{
		Destination: ap("80.100.1.2:8090"), SourceLAN: ap("10.0.0.5:7000"), SourceWAN: ap("1.2.3.4:5678"),
		IntroLAN: ap("10.0.0.9:7001"), IntroWAN: ap("5.6.7.8:7001"),
		SupportsNewStyle: true, IntroSupportsNewStyle: true, Identifier: 0x1234,
	}
	respNew := resp
	respNew.NewStyle = true
	respFull := resp
	respFull.IntroLAN, respFull.IntroWAN = ap("0.0.0.0:0"), ap("0.0.0.0:0")
	respFull.IntroSupportsNewStyle = false
	respFull.PeerLimitReached = true
	pr := PunctureRequest{LANWalker: ap("192.168.1.10:8090"), WANWalker: ap("80.100.1.2:8090"), Identifier: 0x1234}
	prNew := pr
	prNew.NewStyle = true
	pu := Puncture{SourceLAN: ap("10.0.0.9:7001"), SourceWAN: ap("5.6.7.8:7001"), Identifier: 0x1234}
	puNew := pu
	puNew.NewStyle = true
	ping := Ping{Identifier: 0xbeef}

	decReq := func(id byte, p []byte) (any, error) { return DecodeIntroRequest(id, p) }
	decResp := func(id byte, p []byte) (any, error) { return DecodeIntroResponse(id, p) }
	decPR := func(id byte, p []byte) (any, error) { return DecodePunctureRequest(id, p) }
	decPu := func(id byte, p []byte) (any, error) { return DecodePuncture(id, p) }
	decPing := func(_ byte, p []byte) (any, error) { return DecodePing(p) }
	return []vector{
		{"intro_request_old", true, 42, MsgIntroRequestOld, func() ([]byte, error) { return req.Append(nil) }, decReq, req, 192},
		{"intro_request_new", true, 42, MsgIntroRequest, func() ([]byte, error) { return reqNew.Append(nil) }, decReq, reqNew, 195},
		{"intro_request_new_ipv6", true, 42, MsgIntroRequest, func() ([]byte, error) { return reqNew6.Append(nil) }, decReq, reqNew6, 195 + 12 + 5},
		{"intro_response_old", true, 43, MsgIntroResponseOld, func() ([]byte, error) { return resp.Append(nil) }, decResp, resp, 171 + 33},
		{"intro_response_new", true, 43, MsgIntroResponse, func() ([]byte, error) { return respNew.Append(nil) }, decResp, respNew, 171 + 38},
		{"intro_response_old_peer_limit", true, 43, MsgIntroResponseOld, func() ([]byte, error) { return respFull.Append(nil) }, decResp, respFull, 171 + 33},
		{"puncture_request_old", false, 44, MsgPunctureRequestOld, func() ([]byte, error) { return pr.Append(nil) }, decPR, pr, 31 + 14},
		{"puncture_request_new", false, 44, MsgPunctureRequest, func() ([]byte, error) { return prNew.Append(nil) }, decPR, prNew, 31 + 16},
		{"puncture_old", true, 45, MsgPunctureOld, func() ([]byte, error) { return pu.Append(nil) }, decPu, pu, 171 + 14},
		{"puncture_new", true, 45, MsgPuncture, func() ([]byte, error) { return puNew.Append(nil) }, decPu, puNew, 171 + 16},
		{"ping", false, 46, MsgPing, func() ([]byte, error) { return ping.Append(nil), nil }, decPing, ping, 33},
		{"pong", false, 47, MsgPong, func() ([]byte, error) { return ping.Append(nil), nil }, decPing, ping, 33},
	}
}

func readGolden(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(goldenPath)
	if err != nil {
		t.Fatalf("opening golden file (run with -update to create it): %v", err)
	}
	defer f.Close()
	out := make(map[string]string)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hx, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("golden line %q: want \"name hex\"", line)
		}
		out[name] = strings.TrimSpace(hx)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading golden file: %v", err)
	}
	return out
}

func TestGoldenVectors(t *testing.T) {
	kp := fixedKey(t)
	var file bytes.Buffer
	file.WriteString("# IPv8 discovery datagrams, hex, one per line: name hex.\n")
	file.WriteString("# Community 7e313685c1912a141279f8248fc8db5899c5df5a (py-ipv8 discovery).\n")
	file.WriteString("# Signing key: LibNaCLSK: followed by the bytes 0x01..0x40.\n")
	file.WriteString("# Inputs: see overlay/ipv8/golden_test.go. Regenerate: go test ./overlay/ipv8 -run TestGoldenVectors -update\n")
	got := make(map[string]string)
	for _, v := range goldenVectors() {
		payload, err := v.build()
		if err != nil {
			t.Fatalf("%s: encoding: %v", v.name, err)
		}
		var dg []byte
		if v.signed {
			dg = AppendSigned(nil, kp, discoveryCommunity, v.msgID, v.gt, payload)
		} else {
			dg = AppendUnsigned(nil, discoveryCommunity, v.msgID, v.gt, payload)
		}
		if len(dg) != v.size {
			t.Errorf("%s: datagram is %d bytes, want %d", v.name, len(dg), v.size)
		}
		got[v.name] = hex.EncodeToString(dg)
		fmt.Fprintf(&file, "%s %s\n", v.name, got[v.name])

		// Decode the datagram back and compare with the input.
		var m Message
		if v.signed {
			m, err = DecodeSigned(dg)
		} else {
			m, err = DecodeUnsigned(dg)
		}
		if err != nil {
			t.Fatalf("%s: decoding datagram: %v", v.name, err)
		}
		if m.GlobalTime != v.gt || m.ID != v.msgID || m.Community != discoveryCommunity {
			t.Errorf("%s: header decoded as (gt %d, id %d, community %s), want (%d, %d, %s)",
				v.name, m.GlobalTime, m.ID, m.Community, v.gt, v.msgID, discoveryCommunity)
		}
		if v.signed && m.Key != kp.Public() {
			t.Errorf("%s: key decoded as %x, want %x", v.name, m.Key, kp.Public())
		}
		dec, err := v.decode(m.ID, m.Payload)
		if err != nil {
			t.Fatalf("%s: decoding payload: %v", v.name, err)
		}
		if !reflect.DeepEqual(dec, v.want) {
			t.Errorf("%s: payload decoded as %+v, want %+v", v.name, dec, v.want)
		}
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, file.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readGolden(t)
	for name, g := range got {
		if want[name] != g {
			t.Errorf("%s: encoding differs from %s\n got %s\nwant %s", name, goldenPath, g, want[name])
		}
	}
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("%s: in %s but not built by the test", name, goldenPath)
		}
	}
}
