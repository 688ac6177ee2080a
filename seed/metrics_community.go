package seed

import (
	"io"

	"github.com/prometheus/client_golang/prometheus"
)

// writeCollected writes c's metrics in the Prometheus text format.
func writeCollected(w io.Writer, c prometheus.Collector) error {
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		return err
	}
	return writeGathered(w, reg)
}

// communityCollector exposes every IPv8 community's message counters
// (the discovery walk, the DHT, and the communities StartCommunity runs),
// labelled by community ID. The number of label values is bounded by the
// communities the node itself registers.
type communityCollector struct{ n *Node }

var (
	descCommunityDatagrams = prometheus.NewDesc("shoal_ipv8_community_datagrams_total",
		"IPv8 datagrams of one community, by outcome: received, delivered, answered, sent, or the reason it was dropped.",
		[]string{"community", "outcome"}, nil)
	descCommunityPeers = prometheus.NewDesc("shoal_ipv8_community_peers",
		"Peers the community's walk knows.", []string{"community"}, nil)
)

func (c communityCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCommunityDatagrams
	ch <- descCommunityPeers
}

func (c communityCollector) Collect(ch chan<- prometheus.Metric) {
	for id, s := range c.n.CommunityStats() {
		cid := id.String()
		for _, x := range []struct {
			outcome string
			v       uint64
		}{
			{"received", s.Received}, {"delivered", s.Delivered}, {"answered", s.Answered}, {"sent", s.Sent},
			{"dropped_malformed", s.DroppedMalformed}, {"dropped_bad_signature", s.DroppedBadSignature},
			{"dropped_unknown_message", s.DroppedUnknownMessage}, {"dropped_rate_limited", s.DroppedRateLimited},
			{"dropped_undecodable", s.DroppedUndecodable}, {"dropped_queue_full", s.DroppedQueueFull},
			{"dropped_unhandled", s.DroppedUnhandled},
		} {
			ch <- prometheus.MustNewConstMetric(descCommunityDatagrams, prometheus.CounterValue, float64(x.v), cid, x.outcome)
		}
		ch <- prometheus.MustNewConstMetric(descCommunityPeers, prometheus.GaugeValue, float64(s.Peers), cid)
	}
}
