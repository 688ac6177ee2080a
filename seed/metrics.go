package seed

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/shoal-p2p/shoal/swarm"
	"github.com/shoal-p2p/shoal/swarm/sched"
)

// Metrics counts what the node does. Fields are updated atomically by the
// parts of the node and read when /metrics is scraped.
//
// The exposition is the Prometheus client library's (client_golang): it
// brings the Go runtime's and the process's own metrics (go_goroutines,
// process_open_fds, process_resident_memory_bytes, ...) and the text
// format's escaping rules for free, at the cost of about 2 MB of binary
// (measured in the commit that made the change).
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

	// Parity rebuilt after downloads were installed (parity.go).
	ParityRebuilds        atomic.Int64 // rebuilds started
	ParityRebuilt         atomic.Int64 // rebuilds finished: the item holds every chunk
	ParityRebuildFailures atomic.Int64 // rebuilds that failed (the output changed, a disk error)
	ParityChunksRebuilt   atomic.Int64 // parity chunks rebuilt and recorded

	// Relaying (overlay/relay), copied from its counters at each scrape.
	RelayClients        atomic.Int64 // peers registered with this relay
	RelayPairs          atomic.Int64 // sessions this relay forwards
	RelayBytesForwarded atomic.Int64 // bytes this relay forwarded
	RelayRefused        atomic.Int64 // connects this relay refused
	RelayDropped        atomic.Int64 // data frames this relay dropped (rate, budget, strangers)
	RelayedIn           atomic.Int64 // QUIC bytes this node received through relays
	RelayedOut          atomic.Int64 // QUIC bytes this node sent through relays
	RelayUpgrades       atomic.Int64 // relayed connections replaced by direct ones

	// Finished downloads' scheduler tallies and chunks fetched from peers
	// holding everything (swarm.Progress.Sched and FetchedFull), summed.
	dlMu        sync.Mutex
	dlSched     sched.Counts
	FetchedFull atomic.Int64
	// Finished downloads' sessions that gave up their slot to a waiting
	// peer (swarm.Progress.SessionsYielded), summed.
	SessionsYielded atomic.Int64
}

// addDownload adds a finished download's tallies.
func (m *Metrics) addDownload(p swarm.Progress) {
	m.FetchedFull.Add(int64(p.FetchedFull))
	m.SessionsYielded.Add(int64(p.SessionsYielded))
	m.dlMu.Lock()
	defer m.dlMu.Unlock()
	c, a := &m.dlSched, p.Sched
	c.Issued += a.Issued
	c.Duplicates += a.Duplicates
	c.Parity += a.Parity
	c.FromFull += a.FromFull
	c.FullShared += a.FullShared
	c.Late += a.Late
	c.Timeouts += a.Timeouts
	c.Elsewhere += a.Elsewhere
	c.Busy += a.Busy
	c.NotFound += a.NotFound
}

func (m *Metrics) schedCounts() sched.Counts {
	m.dlMu.Lock()
	defer m.dlMu.Unlock()
	return m.dlSched
}

// collectors returns the node counters of m and the gauges peers and items.
func (m *Metrics) collectors(peers, items func() int) []prometheus.Collector {
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	gauge := func(name, help string, f func() int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	gauge64 := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		counter("shoal_bytes_up_total", "Chunk bytes served to peers.", &m.BytesUp),
		counter("shoal_bytes_down_total", "Chunk bytes received and verified.", &m.BytesDown),
		counter("shoal_chunks_verified_total", "Chunks that passed verification.", &m.ChunksVerified),
		counter("shoal_chunks_rejected_total", "Chunks that failed verification.", &m.ChunksRejected),
		counter("shoal_chunks_from_full_total", "Chunks verified that came from peers holding every chunk (publishers, finished downloaders).", &m.FetchedFull),
		counter("shoal_download_sessions_yielded_total", "Finished downloads' sessions that gave up their slot to a waiting peer: ended without joining, or idle while peers waited (swarm.Config.MaxSessions).", &m.SessionsYielded),
		counter("shoal_peers_banned_total", "Peers banned by downloads for bad data.", &m.PeersBanned),
		counter("shoal_dht_lookups_total", "DHT provider lookups started.", &m.DHTLookups),
		counter("shoal_dht_provides_total", "DHT provider records announced.", &m.DHTProvides),
		counter("shoal_downloads_total", "Downloads started.", &m.Downloads),
		counter("shoal_publishes_total", "Items published.", &m.Publishes),
		counter("shoal_parity_rebuilds_total", "Parity rebuilds started for installed downloads.", &m.ParityRebuilds),
		counter("shoal_parity_rebuilt_total", "Parity rebuilds finished: the item holds every chunk.", &m.ParityRebuilt),
		counter("shoal_parity_rebuild_failures_total", "Parity rebuilds that failed (the output changed on disk, a disk error).", &m.ParityRebuildFailures),
		counter("shoal_parity_chunks_rebuilt_total", "Parity chunks rebuilt and recorded after install.", &m.ParityChunksRebuilt),
		gauge64("shoal_relay_clients", "Peers registered with this relay.", &m.RelayClients),
		gauge64("shoal_relay_pairs", "Peer pairs this relay forwards between.", &m.RelayPairs),
		counter("shoal_relay_forwarded_bytes_total", "Bytes this relay forwarded (ciphertext).", &m.RelayBytesForwarded),
		counter("shoal_relay_refused_total", "Relay connects refused (unknown target, caps).", &m.RelayRefused),
		counter("shoal_relay_dropped_total", "Relayed frames dropped (rate, budget, strangers).", &m.RelayDropped),
		counter("shoal_relayed_in_bytes_total", "QUIC bytes received through relays.", &m.RelayedIn),
		counter("shoal_relayed_out_bytes_total", "QUIC bytes sent through relays.", &m.RelayedOut),
		counter("shoal_relay_upgrades_total", "Relayed connections replaced by direct ones.", &m.RelayUpgrades),
		gauge("shoal_peers", "Peers known to discovery.", peers),
		gauge("shoal_library_items", "Items in the library.", items),
	}
}

// WritePrometheus writes m alone in the Prometheus text format, with peers
// and items as gauges. A node's /metrics also carries the runtime, process,
// overlay, DHT and registry mirror metrics.
func (m *Metrics) WritePrometheus(w io.Writer, peers, items int) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.collectors(func() int { return peers }, func() int { return items })...)
	return writeGathered(w, reg)
}

func writeGathered(w io.Writer, g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// newPrometheus builds the node's metrics registry: the node's counters,
// the Go runtime (goroutines, memory), the process (open and maximum file
// descriptors, RSS, CPU), and the overlay's and the DHT's drop and refusal
// counters.
func (n *Node) newPrometheus() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(n.metrics.collectors(
		func() int { ps, _ := n.Peers(context.Background()); return len(ps) },
		func() int { return len(n.lib.list()) },
	)...)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		nodeCollector{n},
		communityCollector{n},
	)
	reg.MustRegister(n.gatewayCacheCollectors()...)
	return reg
}

func (n *Node) writeMetrics(w http.ResponseWriter) error { return n.WriteMetrics(w) }

// WriteMetrics writes every metric of the node (what /metrics serves) in
// the Prometheus text format.
func (n *Node) WriteMetrics(w io.Writer) error {
	up, _ := n.srv.Stats()
	n.metrics.BytesUp.Store(up)
	if n.rc != nil {
		rs := n.rc.Stats()
		n.metrics.RelayClients.Store(int64(rs.Clients))
		n.metrics.RelayPairs.Store(int64(rs.Pairs))
		n.metrics.RelayBytesForwarded.Store(int64(rs.BytesForwarded))
		n.metrics.RelayRefused.Store(int64(rs.Refused))
		n.metrics.RelayDropped.Store(int64(rs.Dropped))
		n.metrics.RelayedIn.Store(int64(rs.RelayedIn))
		n.metrics.RelayedOut.Store(int64(rs.RelayedOut))
	}
	return writeGathered(w, n.prom)
}

// nodeCollector reads the overlay's and the DHT's counters at each scrape.
type nodeCollector struct{ n *Node }

var (
	descRefused = prometheus.NewDesc("shoal_conn_refused_total",
		"Incoming QUIC connections refused or ended in their handshake, by reason.", []string{"reason"}, nil)
	descConns = prometheus.NewDesc("shoal_conns",
		"Open QUIC connections.", nil, nil)
	descHandshakes = prometheus.NewDesc("shoal_handshakes",
		"Incoming QUIC handshakes in progress.", nil, nil)
	descTCPSessions = prometheus.NewDesc("shoal_tcp_sessions",
		"Open TCP sessions (the TLS-over-TCP transport of chunk streams).", nil, nil)
	descTCPBuffer = prometheus.NewDesc("shoal_tcp_buffer_bytes",
		"Receive buffer reserved by TCP sessions.", nil, nil)
	descTCPRefused = prometheus.NewDesc("shoal_tcp_refused_total",
		"Incoming TCP connections refused or closed, and TCP stream windows refused, by reason.", []string{"reason"}, nil)
	descTCPDialFails = prometheus.NewDesc("shoal_tcp_dial_failures_total",
		"TCP dials that failed (the peer then stays on QUIC for a minute).", nil, nil)
	descRetries = prometheus.NewDesc("shoal_quic_retries_total",
		"Incoming handshakes asked to prove their address (QUIC Retry) under load.", nil, nil)
	descDatagramDrops = prometheus.NewDesc("shoal_datagram_drops_total",
		"Datagrams (and streams) dropped by the overlay and its IPv8 endpoint, by reason.", []string{"reason"}, nil)
	descDHTDrops = prometheus.NewDesc("shoal_dht_drops_total",
		"DHT messages and records refused or dropped, by reason.", []string{"reason"}, nil)
	descDHTTable = prometheus.NewDesc("shoal_dht_table_nodes",
		"Nodes in the DHT routing table.", nil, nil)
	descRequests = prometheus.NewDesc("shoal_chunk_requests_total",
		"Finished downloads' chunk requests, by kind: issued; of those duplicate (another request fetched the chunk), parity, from_full (to a peer holding every chunk), full_shared (from_full while another peer announced the chunk); and how some ended: late (verified already), timeout, elsewhere, busy, not_found.", []string{"kind"}, nil)
	descSuperSeed = prometheus.NewDesc("shoal_superseed_total",
		"Super-seeding's decisions on chunk requests, by decision (see swarm.SuperSeedCounters).", []string{"decision"}, nil)
	descSuperSeedRepeats = prometheus.NewDesc("shoal_superseed_repeats_total",
		"Super-seeding's decisions to send a chunk it sent before, by why (see swarm.SuperSeedRepeats).", []string{"why"}, nil)
	descBans = prometheus.NewDesc("shoal_bans_total",
		"Peers penalised, by reason: bad_chunk (banned by a download), bad_mapping (registry mirror).", []string{"reason"}, nil)
)

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descSuperSeed, descSuperSeedRepeats, descRefused, descConns, descHandshakes, descTCPSessions, descTCPBuffer, descTCPRefused, descTCPDialFails, descRetries, descDatagramDrops, descDHTDrops, descDHTTable, descBans} {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	counter := func(d *prometheus.Desc, v uint64, label string) {
		if label == "" {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
			return
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), label)
	}
	if n.ov != nil {
		s := n.ov.Stats()
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(s.Conns))
		ch <- prometheus.MustNewConstMetric(descHandshakes, prometheus.GaugeValue, float64(s.Handshakes))
		counter(descRetries, s.Retries, "")
		for _, x := range []struct {
			reason string
			v      uint64
		}{
			{"conn_limit", s.RefusedConns}, {"handshake_limit", s.RefusedHandshakes},
			{"ip_handshake_limit", s.RefusedIPHandshakes}, {"ip_conn_limit", s.RefusedIPConns},
			{"peer_conn_limit", s.RefusedPeerConns}, {"handshake_evicted", s.Evicted},
		} {
			counter(descRefused, x.v, x.reason)
		}
		ch <- prometheus.MustNewConstMetric(descTCPSessions, prometheus.GaugeValue, float64(s.TCP.Sessions))
		ch <- prometheus.MustNewConstMetric(descTCPBuffer, prometheus.GaugeValue, float64(s.TCP.BufferBytes))
		counter(descTCPDialFails, s.TCP.DialFails, "")
		for _, x := range []struct {
			reason string
			v      uint64
		}{
			{"conn_limit", s.TCP.RefusedConns}, {"handshake_limit", s.TCP.RefusedHandshakes},
			{"ip_handshake_limit", s.TCP.RefusedIPHandshakes}, {"ip_conn_limit", s.TCP.RefusedIPConns},
			{"peer_conn_limit", s.TCP.RefusedPeerConns}, {"handshake_failed", s.TCP.HandshakeFails},
			{"buffer_limit", s.TCP.BufferRefused}, {"handshake_evicted", s.TCP.Evicted},
		} {
			counter(descTCPRefused, x.v, x.reason)
		}
		e := n.ov.Endpoint().Stats()
		for _, x := range []struct {
			reason string
			v      uint64
		}{
			{"not_ipv8", s.DatagramsDropByte}, {"bad_source", s.DatagramsDropAddr}, {"stream_bad_tag", s.StreamsBadTag},
			{"oversized", e.DroppedOversized}, {"malformed", e.DroppedMalformed}, {"bad_signature", e.DroppedBadSignature},
			{"unknown_community", e.DroppedUnknownCommunity}, {"unknown_message", e.DroppedUnknownMessage},
			{"rate_limited", e.DroppedRateLimited - e.DroppedRateLimitedHost}, {"host_rate_limited", e.DroppedRateLimitedHost},
		} {
			counter(descDatagramDrops, x.v, x.reason)
		}
	}
	if n.dht != nil {
		k := n.dht.Counters()
		for _, x := range []struct {
			reason string
			v      uint64
		}{
			{"malformed", k.Malformed}, {"oversized", k.Oversized}, {"rate_limited", k.RateLimited}, {"host_rate_limited", k.HostRateLimited},
			{"unexpected_reply", k.UnexpectedReplies}, {"bad_signature", k.BadSignatures},
			{"bad_token", k.BadTokens}, {"foreign_record", k.ForeignRecords}, {"bad_expiry", k.BadExpiry},
			{"store_full", k.StoreFull}, {"replay", k.Replays}, {"verify_skipped", k.VerifySkipped},
			{"inbox_full", n.dht.InboxDrops()}, {"send_error", n.dht.SendErrors()},
		} {
			counter(descDHTDrops, x.v, x.reason)
		}
		ch <- prometheus.MustNewConstMetric(descDHTTable, prometheus.GaugeValue, float64(n.dht.TableSize()))
	}
	type kv struct {
		k string
		v int64
	}
	sc := n.metrics.schedCounts()
	for _, x := range []kv{
		{"issued", sc.Issued}, {"duplicate", sc.Duplicates}, {"parity", sc.Parity}, {"from_full", sc.FromFull},
		{"full_shared", sc.FullShared}, {"late", sc.Late}, {"timeout", sc.Timeouts}, {"elsewhere", sc.Elsewhere},
		{"busy", sc.Busy}, {"not_found", sc.NotFound},
	} {
		counter(descRequests, uint64(x.v), x.k)
	}
	if n.srv != nil {
		ss := n.srv.SuperSeedCounters()
		for _, x := range []kv{
			{"claimed", ss.Claimed}, {"distinct", ss.Distinct}, {"refused", ss.Refused}, {"refused_early", ss.Early}, {"overflowed", ss.Overflowed},
			{"capped", ss.Capped}, {"lapsed", ss.Lapsed}, {"unpassed", ss.Unpassed}, {"unproven", ss.Unproven},
			{"again", ss.Again}, {"owner", ss.Owner}, {"no_session", ss.NoSession},
		} {
			counter(descSuperSeed, uint64(x.v), x.k)
		}
		r := ss.Repeats
		for _, x := range []kv{
			{"reclaimed", r.Reclaimed}, {"owner", r.Owner}, {"unproven", r.Unproven}, {"again", r.Again},
			{"capped", r.Capped}, {"overflow", r.Overflow}, {"no_session", r.NoSession},
		} {
			counter(descSuperSeedRepeats, uint64(x.v), x.k)
		}
	}
	counter(descBans, uint64(n.metrics.PeersBanned.Load()), "bad_chunk")
	var mapping uint64
	if n.mirror != nil {
		mapping = n.mirror.Penalised()
	}
	counter(descBans, mapping, "bad_mapping")
}

// gatewayCacheCollectors are the gateway cache's metrics (gwcache.go).
func (n *Node) gatewayCacheCollectors() []prometheus.Collector {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		gauge("shoal_gateway_cache_bytes", "Disk bytes the gateway cache takes (at the last measure).",
			func() float64 { b, _ := n.gwCacheStats(); return float64(b) }),
		gauge("shoal_gateway_cache_items", "Items in the gateway cache.",
			func() float64 { _, k := n.gwCacheStats(); return float64(k) }),
		gauge("shoal_gateway_cache_budget_bytes", "The gateway cache's budget (gateway_cache).",
			func() float64 { return float64(n.gw.budget) }),
		counter("shoal_gateway_cache_evictions_total", "Gateway cache items evicted to make room.", &n.gw.evictions),
		counter("shoal_gateway_cache_refusals_total", "Gateway reads refused because the cache was full of items being read.", &n.gw.refusals),
		counter("shoal_gateway_cache_cutoffs_total", "Gateway reads ended early because the cache was full of items being read.", &n.gw.cutoffs),
	}
}
