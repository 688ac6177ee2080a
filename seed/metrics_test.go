package seed

import (
	"runtime"
	"strings"
	"testing"
)

// TestNodeMetrics: a running node's /metrics carries the runtime and
// process metrics and the refusal, drop and ban counters by reason.
func TestNodeMetrics(t *testing.T) {
	n := startNode(t)
	var sb strings.Builder
	if err := n.WriteMetrics(&sb); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"\ngo_goroutines ",
		"\nshoal_bytes_up_total 0\n",
		`shoal_conn_refused_total{reason="conn_limit"} 0`,
		`shoal_conn_refused_total{reason="ip_conn_limit"} 0`,
		`shoal_datagram_drops_total{reason="not_ipv8"} 0`,
		`shoal_datagram_drops_total{reason="rate_limited"} 0`,
		`shoal_dht_drops_total{reason="replay"} 0`,
		`shoal_dht_drops_total{reason="inbox_full"} 0`,
		`shoal_bans_total{reason="bad_chunk"} 0`,
		`shoal_bans_total{reason="bad_mapping"} 0`,
		"\nshoal_conns 0\n",
	}
	if runtime.GOOS == "linux" {
		want = append(want, "\nprocess_open_fds ", "\nprocess_max_fds ")
	}
	for _, w := range want {
		if !strings.Contains(sb.String(), w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", sb.String())
	}
}
