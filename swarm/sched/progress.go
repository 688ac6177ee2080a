package sched

import (
	"slices"
	"time"
)

// Progress is a snapshot of a download, for progress bars and metrics.
type Progress struct {
	DataBytes        int64 // content bytes (Layout.Size)
	VerifiedBytes    int64 // bytes of verified data chunks
	RecoverableBytes int64 // data bytes in complete stripes plus verified data elsewhere
	Stripes          int   // stripes in the layout
	StripesComplete  int   // stripes with d_s verified chunks
	Requests         int   // outstanding requests (endgame duplicates included)
	InflightBytes    int64 // bytes of outstanding requests
	Endgame          bool  // nothing servable is unrequested; idle peers help stuck requests
	Done             bool
	Peers            []PeerProgress // live peers, then banned ones still connected; by ID
}

// PeerProgress is one peer's share of a download.
type PeerProgress struct {
	Peer          PeerID
	Rate          float64       // measured delivery rate, bytes/s (0: not measured yet)
	Requests      int           // outstanding requests
	InflightBytes int64         // bytes of outstanding requests
	Queue         int           // requests the peer may have outstanding now
	SRTT          time.Duration // smoothed request latency (0: not measured yet)
	Timeout       time.Duration // timeout a request issued now would get
	Received      int64         // bytes of new verified chunks from the peer
	Timeouts      int           // requests that timed out
	Bad           int           // chunks that failed verification
	Banned        bool
}

// Counts tallies the scheduler's decisions since New, so that a benchmark
// can tell where bytes went: requests beyond one per chunk, parity, what
// was asked of peers holding everything (a publisher) while other peers
// announced the chunk, and how requests ended.
type Counts struct {
	Issued     int64 // requests issued
	Duplicates int64 // requests issued for a chunk another request was fetching (endgame)
	Parity     int64 // requests issued for parity chunks
	FromFull   int64 // requests issued to peers that announced every chunk when they joined
	FullShared int64 // of those, for chunks another peer announced too
	Late       int64 // chunks verified that were verified already (duplicates, cancelled requests)
	Timeouts   int64 // requests that timed out (the scheduler's deadline or the driver's report)
	Elsewhere  int64 // requests answered "fetch it elsewhere"
	Busy       int64 // requests refused as busy
	NotFound   int64 // requests answered "not held"
}

// Counts returns the decision tallies.
func (s *Scheduler) Counts() Counts { return s.cnt }

// Progress returns a snapshot. It allocates; call it at human rates.
func (s *Scheduler) Progress() Progress {
	pr := Progress{
		DataBytes:       s.lay.Size,
		VerifiedBytes:   s.verifiedData,
		Stripes:         s.nstripes,
		StripesComplete: s.complete,
		Requests:        s.nreqs,
		InflightBytes:   s.inBytes,
		Endgame:         !s.done && s.endgame(),
		Done:            s.done,
	}
	rec := s.verifiedData
	for st := range s.nstripes {
		if !s.sComplete.has(st) {
			continue
		}
		start, d := s.lay.StripeStart(st), s.dataIn(st)
		for c := start; c < start+d; c++ {
			if !s.verified.has(c) {
				rec += int64(s.lay.ChunkBytes(c))
			}
		}
	}
	pr.RecoverableBytes = rec
	for _, p := range s.byID {
		pr.Peers = append(pr.Peers, PeerProgress{
			Peer:          p.id,
			Rate:          p.rate,
			Requests:      len(p.reqs),
			InflightBytes: p.inflightBytes,
			Queue:         p.limit,
			SRTT:          p.srtt,
			Timeout:       p.rto(&s.cfg),
			Received:      p.received,
			Timeouts:      p.timeouts,
			Bad:           p.bad,
			Banned:        p.banned,
		})
	}
	slices.SortFunc(pr.Peers, func(a, b PeerProgress) int {
		if a.Banned != b.Banned {
			if a.Banned {
				return 1
			}
			return -1
		}
		return slices.Compare(a.Peer[:], b.Peer[:])
	})
	return pr
}
