package sched

import (
	"fmt"
	"strings"
)

// dump describes every peer, for failure messages.
func (s *Scheduler) dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "workGen %d, needTotal %d, now %v\n", s.workGen, s.needTotal, s.now.Sub(epoch))
	for _, p := range s.byID {
		n := 0
		for c := range s.nchunks {
			if p.have.has(c) {
				n++
			}
		}
		fmt.Fprintf(&b, "  peer %v slot %d: have %d, reqs %d/%d, bytes %d, rate %.0f, busyUntil %v, gone %v, banned %v, noWork %d, rto %v\n",
			p.id, p.slot, n, len(p.reqs), p.limit, p.inflightBytes, p.rate, p.busyUntil.Sub(epoch), p.gone, p.banned, p.noWork, p.rto(&s.cfg))
	}
	return b.String()
}
