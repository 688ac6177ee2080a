package dhtsim

import (
	"fmt"
	"time"

	"github.com/shoal-p2p/shoal/dht"
)

// Grow adds n nodes that join one after another, gap apart in simulated
// time, each bootstrapping from up to three random nodes already alive. It
// returns the new nodes after every bootstrap has finished (or an error
// naming the first that failed).
func (s *Sim) Grow(n int, gap time.Duration) ([]*Node, error) {
	var alive []*Node
	for _, x := range s.nodes {
		if x.Alive {
			alive = append(alive, x)
		}
	}
	added := make([]*Node, 0, n)
	joins := make([]dht.LookupID, 0, n)
	for range n {
		nd := s.AddNode()
		var via []*Node
		for j := 0; j < 3 && len(alive) > 0; j++ {
			via = append(via, alive[s.rng.IntN(len(alive))])
		}
		if len(via) > 0 {
			joins = append(joins, s.Join(nd, via))
		} else {
			joins = append(joins, 0)
		}
		added = append(added, nd)
		alive = append(alive, nd)
		s.RunUntil(s.now.Add(gap))
	}
	s.Wait(time.Hour, added, joins)
	for i, nd := range added {
		if joins[i] == 0 {
			continue
		}
		r := nd.Result(joins[i])
		if r == nil || !r.Done {
			return added, fmt.Errorf("dhtsim: node %d: bootstrap did not finish", nd.Index)
		}
		if r.Err != nil {
			return added, fmt.Errorf("dhtsim: node %d: bootstrap: %w", nd.Index, r.Err)
		}
	}
	return added, nil
}

// Alive returns the live nodes, in order.
func (s *Sim) Alive() []*Node {
	var out []*Node
	for _, x := range s.nodes {
		if x.Alive {
			out = append(out, x)
		}
	}
	return out
}

// Wait runs until every (node, lookup) pair has finished (a zero lookup
// counts as finished) or the simulated
// time limit passes. It reports whether all finished.
func (s *Sim) Wait(limit time.Duration, nodes []*Node, ids []dht.LookupID) bool {
	next := 0 // every pair before next has finished; finishing is permanent
	return s.RunWhile(s.now.Add(limit), func() bool {
		for next < len(nodes) && (ids[next] == 0 || nodes[next].Done(ids[next])) {
			next++
		}
		return next < len(nodes)
	})
}
