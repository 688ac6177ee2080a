package sched

import (
	"testing"
	"time"
)

func TestTimeoutReissues(t *testing.T) {
	l := Layout{Size: 2 << 10, ChunkSize: 1 << 10, K: 2}
	s := mustNew(t, l, nil, Config{InitialQueue: 1}, 1)
	s.PeerJoined(epoch, pid(1), fullBitmap(l.Chunks()))
	acts, dl := s.Ready(nil)
	if len(acts) != 1 || acts[0].Kind != Request {
		t.Fatalf("first actions %v, want one request", acts)
	}
	if want := epoch.Add(DefaultInitialTimeout); !dl.Equal(want) {
		t.Fatalf("deadline %v, want now+InitialTimeout %v", dl.Sub(epoch), want.Sub(epoch))
	}
	s.Tick(dl.Add(-time.Nanosecond))
	if got := take(t, s, 0); len(got) != 0 {
		t.Fatalf("tick before the deadline: %v", got)
	}
	s.Tick(dl)
	acts, dl2 := s.Ready(nil)
	if len(acts) != 2 || acts[0] != (Action{Kind: Cancel, Peer: pid(1), Chunk: acts[0].Chunk, Stripe: -1}) || acts[1].Kind != Request {
		t.Fatalf("at the deadline: %v, want a cancel and a new request", acts)
	}
	if got, want := dl2.Sub(dl), 2*DefaultInitialTimeout; got != want {
		t.Errorf("timeout after a timeout %v, want doubled %v", got, want)
	}
	// A late answer to the timed-out request still counts.
	if !s.ChunkOK(dl.Add(time.Second), pid(1), acts[0].Chunk, 1<<10, 0) {
		t.Errorf("late chunk %d not accepted", acts[0].Chunk)
	}
	if err := checkInternal(s); err != nil {
		t.Fatal(err)
	}
}

func TestAdaptiveTimeout(t *testing.T) {
	cfg := Config{}.populate(1024)
	cases := []struct {
		name    string
		samples []time.Duration
		want    time.Duration
	}{
		{"unmeasured", nil, DefaultInitialTimeout},
		{"floor", []time.Duration{time.Millisecond, time.Millisecond}, DefaultMinTimeout},
		{"steady 1s", []time.Duration{time.Second, time.Second, time.Second}, time.Second + 4*(time.Second*9/32)},
		{"ceiling", []time.Duration{time.Minute}, DefaultMaxTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(pid(1), 1, &cfg)
			for _, r := range tc.samples {
				p.sampleRTT(r)
			}
			if got := p.rto(&cfg); got != tc.want {
				t.Errorf("rto after %v = %v, want %v", tc.samples, got, tc.want)
			}
		})
	}
}

func TestBusyBackoff(t *testing.T) {
	l := Layout{Size: 8 << 10, ChunkSize: 1 << 10, K: 8}
	s := mustNew(t, l, nil, Config{InitialQueue: 4}, 1)
	s.PeerJoined(epoch, pid(1), fullBitmap(l.Chunks()))
	reqs := take(t, s, Request)
	now := epoch.Add(10 * time.Millisecond)
	s.RequestFailed(now, pid(1), reqs[0].Chunk, Busy)
	acts, dl := s.Ready(nil)
	if len(acts) != 0 {
		t.Fatalf("after a busy refusal: %v, want nothing until the backoff ends", acts)
	}
	if want := now.Add(DefaultBusyBackoff); !dl.Equal(want) {
		t.Fatalf("deadline %v, want end of backoff %v", dl.Sub(epoch), want.Sub(epoch))
	}
	s.Tick(dl)
	acts = take(t, s, Request)
	// Queue halved from 4 to 2; three requests are still outstanding.
	if len(acts) != 0 {
		t.Errorf("after backoff with a halved queue: %v, want no new request (3 outstanding, queue 2)", acts)
	}
	if q := s.byID[pid(1)].limit; q != 2 {
		t.Errorf("queue %d after busy, want 2", q)
	}
	// A second refusal in a row doubles the backoff.
	s.RequestFailed(dl, pid(1), reqs[1].Chunk, Busy)
	dl2 := dl.Add(2 * DefaultBusyBackoff)
	if _, got := s.Ready(nil); !got.Equal(dl2) {
		t.Errorf("second backoff %v, want %v", got.Sub(dl), 2*DefaultBusyBackoff)
	}
	// A refusal arriving inside that backoff answers a request sent before
	// it: it neither extends the backoff nor halves the queue again.
	q := s.byID[pid(1)].limit
	s.RequestFailed(dl.Add(time.Millisecond), pid(1), reqs[2].Chunk, Busy)
	if _, got := s.Ready(nil); !got.Equal(dl2) {
		t.Errorf("a parallel refusal moved the backoff end to %v, want %v", got.Sub(epoch), dl2.Sub(epoch))
	}
	if got := s.byID[pid(1)].limit; got != q {
		t.Errorf("a parallel refusal changed the queue from %d to %d", q, got)
	}
}

func TestPeerGoneAndNotFound(t *testing.T) {
	l := Layout{Size: 8 << 10, ChunkSize: 1 << 10, K: 8}
	n := l.Chunks()
	s := mustNew(t, l, nil, Config{InitialQueue: 3}, 1)
	s.PeerJoined(epoch, pid(1), fullBitmap(n))
	reqs := take(t, s, Request)
	s.RequestFailed(epoch, pid(1), reqs[0].Chunk, NotFound)
	if s.byID[pid(1)].have.has(reqs[0].Chunk) {
		t.Errorf("chunk %d still counted at the peer after not-found", reqs[0].Chunk)
	}
	for _, a := range take(t, s, Request) {
		if a.Chunk == reqs[0].Chunk {
			t.Errorf("not-found chunk asked again from the same peer: %v", a)
		}
	}
	s.RequestFailed(epoch, pid(1), reqs[1].Chunk, PeerGone)
	if got := take(t, s, 0); len(got) != 0 || s.nreqs != 0 {
		t.Errorf("after peer-gone: actions %v, %d requests outstanding; want none", got, s.nreqs)
	}
	s.PeerJoined(epoch, pid(1), nil) // reconnects
	if got := take(t, s, Request); len(got) == 0 {
		t.Errorf("reconnected peer got no requests")
	}
}
