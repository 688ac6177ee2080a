package registry

import "github.com/prometheus/client_golang/prometheus"

// Results of a blob request, the label of shoal_registry_blob_requests_total.
const (
	resultHit      = "hit"       // served from the node's verified blobs
	resultPeer     = "peer"      // fetched from peers, then served
	resultUpstream = "upstream"  // fetched from the upstream, then served
	resultNotFound = "not_found" // nobody had it (404)
	resultError    = "error"     // upstream failure, client gone, bad request
)

type metrics struct {
	servedBytes   prometheus.Counter
	peerBytes     prometheus.Counter
	upstreamBytes prometheus.Counter
	blobRequests  *prometheus.CounterVec
	manifestReqs  *prometheus.CounterVec
	badMappings   prometheus.Counter
	mapRefused    prometheus.Counter
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		servedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_registry_served_bytes_total", Help: "Bytes of blobs and manifests sent to registry clients.",
		}),
		peerBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_registry_peer_bytes_total", Help: "Bytes of blobs fetched from peers (verified).",
		}),
		upstreamBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_registry_upstream_bytes_total", Help: "Bytes of blobs and manifests read from upstream registries.",
		}),
		blobRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_registry_blob_requests_total", Help: "Blob requests by result: hit (held), peer, upstream (misses by where they were filled), not_found, error.",
		}, []string{"result"}),
		manifestReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_registry_manifest_requests_total", Help: "Manifest requests by result: hit (cache), upstream, not_found, error.",
		}, []string{"result"}),
		badMappings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_registry_bad_mappings_total", Help: "Peers penalised for mapping a digest to content that is not that blob.",
		}),
		mapRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_registry_mapping_refused_total", Help: "Mapping streams reset over the global or per-peer cap.",
		}),
	}
	for _, res := range []string{resultHit, resultPeer, resultUpstream, resultNotFound, resultError} {
		m.blobRequests.WithLabelValues(res)
	}
	for _, res := range []string{resultHit, resultUpstream, resultNotFound, resultError} {
		m.manifestReqs.WithLabelValues(res)
	}
	if r != nil {
		r.MustRegister(m.servedBytes, m.peerBytes, m.upstreamBytes, m.blobRequests, m.manifestReqs, m.badMappings, m.mapRefused)
	}
	return m
}
