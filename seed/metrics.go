package seed

import (
	"fmt"
	"io"
	"sync/atomic"
)

// Metrics counts what the node does. Fields are updated atomically by the
// parts of the node and read by the control API's /metrics handler.
type Metrics struct {
	BytesUp        atomic.Int64 // chunk bytes served to peers
	BytesDown      atomic.Int64 // chunk bytes received and verified
	ChunksVerified atomic.Int64 // chunks that passed verification
	ChunksRejected atomic.Int64 // chunks that failed verification
	PeersBanned    atomic.Int64 // peers banned by downloads for bad data
	DHTLookups     atomic.Int64 // provider lookups started
	DHTProvides    atomic.Int64 // provider records announced
	Downloads      atomic.Int64 // downloads started
	Publishes      atomic.Int64 // items published

	// Relaying (overlay/relay), copied from its counters at each scrape.
	RelayClients        atomic.Int64 // peers registered with this relay
	RelayPairs          atomic.Int64 // sessions this relay forwards
	RelayBytesForwarded atomic.Int64 // bytes this relay forwarded
	RelayRefused        atomic.Int64 // connects this relay refused
	RelayDropped        atomic.Int64 // data frames this relay dropped (rate, budget, strangers)
	RelayedIn           atomic.Int64 // QUIC bytes this node received through relays
	RelayedOut          atomic.Int64 // QUIC bytes this node sent through relays
	RelayUpgrades       atomic.Int64 // relayed connections replaced by direct ones
}

// metric is one line of the exposition.
type metric struct {
	name, help, kind string
	value            func() int64
}

// WritePrometheus writes the metrics in the Prometheus text format, with
// peers as a gauge supplied by the caller.
func (m *Metrics) WritePrometheus(w io.Writer, peers, items int) error {
	ms := []metric{
		{"shoal_bytes_up_total", "Chunk bytes served to peers.", "counter", m.BytesUp.Load},
		{"shoal_bytes_down_total", "Chunk bytes received and verified.", "counter", m.BytesDown.Load},
		{"shoal_chunks_verified_total", "Chunks that passed verification.", "counter", m.ChunksVerified.Load},
		{"shoal_chunks_rejected_total", "Chunks that failed verification.", "counter", m.ChunksRejected.Load},
		{"shoal_peers_banned_total", "Peers banned by downloads for bad data.", "counter", m.PeersBanned.Load},
		{"shoal_dht_lookups_total", "DHT provider lookups started.", "counter", m.DHTLookups.Load},
		{"shoal_dht_provides_total", "DHT provider records announced.", "counter", m.DHTProvides.Load},
		{"shoal_downloads_total", "Downloads started.", "counter", m.Downloads.Load},
		{"shoal_publishes_total", "Items published.", "counter", m.Publishes.Load},
		{"shoal_relay_clients", "Peers registered with this relay.", "gauge", m.RelayClients.Load},
		{"shoal_relay_pairs", "Peer pairs this relay forwards between.", "gauge", m.RelayPairs.Load},
		{"shoal_relay_forwarded_bytes_total", "Bytes this relay forwarded (ciphertext).", "counter", m.RelayBytesForwarded.Load},
		{"shoal_relay_refused_total", "Relay connects refused (unknown target, caps).", "counter", m.RelayRefused.Load},
		{"shoal_relay_dropped_total", "Relayed frames dropped (rate, budget, strangers).", "counter", m.RelayDropped.Load},
		{"shoal_relayed_in_bytes_total", "QUIC bytes received through relays.", "counter", m.RelayedIn.Load},
		{"shoal_relayed_out_bytes_total", "QUIC bytes sent through relays.", "counter", m.RelayedOut.Load},
		{"shoal_relay_upgrades_total", "Relayed connections replaced by direct ones.", "counter", m.RelayUpgrades.Load},
		{"shoal_peers", "Peers known to discovery.", "gauge", func() int64 { return int64(peers) }},
		{"shoal_library_items", "Items in the library.", "gauge", func() int64 { return int64(items) }},
	}
	for _, x := range ms {
		if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", x.name, x.help, x.name, x.kind, x.name, x.value()); err != nil {
			return err
		}
	}
	return nil
}
