package discovery

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/shoal-p2p/shoal/overlay/ipv8"
)

// BenchmarkHandleIntroRequest measures the core's answer to a request
// (decode, table update, introduction choice, response and puncture
// request encoding) with a full table of 30 peers; signing and verifying
// are the endpoint's and excluded.
func BenchmarkHandleIntroRequest(b *testing.B) {
	t := &testing.T{}
	resp := newTNode(t, "10.0.0.2:7000", Config{})
	for i := range 30 {
		p := newTNode(t, fmt.Sprintf("10.0.1.%d:7000", i+1), Config{})
		req := only(t, sends(walkTo(p.core, t0, resp.addr)), "request")
		deliver(t, t0, p, req, resp)
	}
	a := newTNode(t, "10.0.0.1:7000", Config{})
	req := ipv8.IntroRequest{NewStyle: true, Destination: resp.addr, SourceLAN: a.addr, SourceWAN: a.addr, Identifier: 1}
	payload, _ := req.Append(nil)
	m := &ipv8.Message{From: netip.MustParseAddrPort("10.0.0.1:7000"), Community: CommunityID, ID: req.MsgID(), Signed: true, Key: a.key, Payload: payload}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	var actions []Action
	for b.Loop() {
		resp.core.Handle(t0, m)
		actions, _ = resp.core.Ready(actions[:0])
		sends := 0
		for i := range actions {
			if actions[i].Kind == ActionSend {
				sends++
			}
		}
		if sends != 2 {
			b.Fatalf("%d sends, want a response and a puncture request", sends)
		}
	}
}
