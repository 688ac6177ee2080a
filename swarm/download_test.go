package swarm_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/swarm"
)

func TestOneSeederFiveLeechers(t *testing.T) {
	checkLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	seeder := newPeer(t, swarm.ServerConfig{})
	c := publish(t, seeder, 3<<20+12345, 1)
	leechers := make([]*tpeer, 5)
	for i := range leechers {
		leechers[i] = newPeer(t, swarm.ServerConfig{})
	}
	dones := make([]<-chan error, len(leechers))
	dls := make([]*swarm.Download, len(leechers))
	for i, l := range leechers {
		from := []*tpeer{seeder}
		for j, o := range leechers {
			if j != i {
				from = append(from, o)
			}
		}
		dls[i], dones[i] = startDownload(ctx, t, l, c, swarm.Config{Seed: uint64(i + 1)}, from...)
	}
	for i, l := range leechers {
		waitRun(t, fmt.Sprintf("leecher %d", i), dones[i], 40*time.Second)
		checkOutput(t, l, c)
		if p := dls[i].Progress(); !p.Done || p.Verified != int64(len(c.data)) {
			t.Errorf("leecher %d progress %+v, want done with %d bytes verified", i, p, len(c.data))
		}
	}
	up, _ := seeder.srv.Stats()
	var fromLeechers int64
	for _, l := range leechers {
		u, _ := l.srv.Stats()
		fromLeechers += u
	}
	t.Logf("seeder uploaded %d bytes, leechers uploaded %d bytes (content %d)", up, fromLeechers, len(c.data))
	if up > int64(len(c.data))*5 {
		t.Errorf("seeder uploaded %d bytes, more than 5 copies (%d)", up, 5*len(c.data))
	}
}

func TestFiveSeedersEachHoldAPart(t *testing.T) {
	checkLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	publisher := newPeer(t, swarm.ServerConfig{})
	c := publish(t, publisher, 2<<20+777, 2)
	publisher.srv.Unseed(c.id) // the publisher is not in the swarm
	seeders := make([]*tpeer, 5)
	for j := range seeders {
		seeders[j] = newPeer(t, swarm.ServerConfig{})
		seedPart(t, seeders[j], publisher, c, func(i int) bool {
			s, pos := c.man.StripeOf(i)
			return (s+pos)%5 == j
		})
	}
	leecher := newPeer(t, swarm.ServerConfig{})
	d, done := startDownload(ctx, t, leecher, c, swarm.Config{}, seeders...)
	waitRun(t, "leecher", done, 40*time.Second)
	checkOutput(t, leecher, c)
	for j, s := range seeders {
		if up, _ := s.srv.Stats(); up == 0 {
			t.Errorf("seeder %d uploaded nothing; every seeder holds a needed part", j)
		}
	}
	t.Logf("progress: %+v", d.Progress())
}
