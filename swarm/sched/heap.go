package sched

// A binary min-heap of request indices by deadline (then index), with each
// request's position kept in request.heapIdx so any request can leave it.

func (s *Scheduler) heapLess(i, j int) bool {
	a, b := &s.reqs[s.heap[i]], &s.reqs[s.heap[j]]
	return a.due < b.due || a.due == b.due && s.heap[i] < s.heap[j]
}

func (s *Scheduler) heapSwap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.reqs[s.heap[i]].heapIdx = int32(i)
	s.reqs[s.heap[j]].heapIdx = int32(j)
}

func (s *Scheduler) heapUp(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !s.heapLess(i, parent) {
			return
		}
		s.heapSwap(i, parent)
		i = parent
	}
}

func (s *Scheduler) heapDown(i int) {
	n := len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && s.heapLess(r, l) {
			m = r
		}
		if !s.heapLess(m, i) {
			return
		}
		s.heapSwap(i, m)
		i = m
	}
}

func (s *Scheduler) heapPush(ri int32) {
	s.reqs[ri].heapIdx = int32(len(s.heap))
	s.heap = append(s.heap, ri)
	s.heapUp(len(s.heap) - 1)
}

func (s *Scheduler) heapRemove(ri int32) {
	i := int(s.reqs[ri].heapIdx)
	if i < 0 {
		return
	}
	last := len(s.heap) - 1
	if i != last {
		s.heapSwap(i, last)
	}
	s.heap = s.heap[:last]
	s.reqs[ri].heapIdx = -1
	if i != last {
		s.heapDown(i)
		s.heapUp(i)
	}
}
