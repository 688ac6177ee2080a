package seed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/gateway"
	"github.com/shoal-p2p/shoal/swarm"
)

// The HTTP gateway (package gateway) reads content through the node:
// published and finished items from the store, downloads in progress
// through their readers, and anything else by starting an on-demand
// download into the data folder's gateway cache (gatewayDir/<id>), which
// fetches only what readers ask for and stops gwIdle after its last reader
// left. The cache is kept within a byte budget (gwcache.go).

const (
	gatewayDir = "gateway"
	gwIdle     = 30 * time.Second
)

// gwState is the gateway part of a Node.
type gwState struct {
	g      *gateway.Gateway
	addr   string
	budget int64 // Config.GatewayCache

	// admit serialises what adds to the cache or takes from it
	// (admissions, evictions, removals), so that an evicted item's files
	// are gone before its ID can be fetched again. Taken before mu.
	admit sync.Mutex
	mu    sync.Mutex // guards dls and entries; may be held while taking Node.mu, never the reverse
	dls   map[chunker.ContentID]*gwDownload
	// entries are the items of the cache on disk, running or not.
	entries map[chunker.ContentID]*gwEntry
	kick    chan struct{} // capacity 1: a download grew, the keeper measures

	evictions, refusals, cutoffs atomic.Int64
}

// gwDownload is an on-demand download the gateway started.
type gwDownload struct {
	dl     *swarm.Download
	refs   int
	cancel context.CancelCauseFunc
	done   chan struct{} // closed after the download was closed
	idle   *time.Timer
}

var errGatewayIdle = errors.New("seed: no gateway reader left")

// startGateway listens on Config.Gateway unless it is "off". A busy
// default address only logs a warning: several nodes on one machine need
// not fight over it; an address the user chose must work.
func (n *Node) startGateway() error {
	if n.cfg.Gateway == "off" {
		return nil
	}
	g, err := gateway.New(gateway.Config{Addr: n.cfg.Gateway, Backend: gwBackend{n}, Logger: n.log})
	if err != nil {
		if n.cfg.gatewayDefault {
			n.log.Warn("gateway off: its default address is in use (set gateway to another address)", "err", err)
			return nil
		}
		return fmt.Errorf("seed: %w", err)
	}
	n.gw.g = g
	n.gw.addr = g.Addr().String()
	n.goRun(func(ctx context.Context) {
		if err := g.Run(ctx); err != nil {
			n.log.Warn("gateway stopped", "err", err)
		}
	})
	return nil
}

// GatewayAddr returns the gateway's address, or "" when it is off.
func (n *Node) GatewayAddr() string { return n.gw.addr }

// stopGatewayDownloads ends every on-demand download and waits for them.
func (n *Node) stopGatewayDownloads() {
	n.gw.mu.Lock()
	var wait []chan struct{}
	for id, d := range n.gw.dls {
		d.cancel(ErrClosed)
		wait = append(wait, d.done)
		delete(n.gw.dls, id)
	}
	n.gw.mu.Unlock()
	for _, ch := range wait {
		<-ch
	}
}

// dropGatewayDownload stops the gateway's download of id, if any, and
// forgets what it fetched, so that a get can download id to where the user
// asked.
func (n *Node) dropGatewayDownload(id chunker.ContentID) {
	if _, err := n.gwRemove(id, errors.New("seed: a get took over the gateway's download")); err != nil && !errors.Is(err, ErrNotFound) {
		n.log.Warn("removing gateway cache entry", "content", id.String(), "err", err)
	}
}

// gwBackend is the node as the gateway's backend.
type gwBackend struct{ n *Node }

func (b gwBackend) Open(ctx context.Context, id chunker.ContentID, hints []chunker.PeerHint) (gateway.Content, error) {
	n := b.n
	var hs []hint
	for _, h := range hints {
		hh, err := resolveHint(h)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", gateway.ErrBadRequest, err)
		}
		hs = append(hs, hh)
	}
	return n.openContent(ctx, id, hs, true)
}

// openContent returns id for reading: held, being downloaded, or fetched on
// demand into the gateway cache. A charged reader (the gateway's: anyone
// who reaches it) reads within the cache's budget, or gets ErrCacheFull;
// the node's own users (cat, get --only, through the authenticated API)
// only make room by evicting idle items. It waits for the manifest until
// ctx ends.
func (n *Node) openContent(ctx context.Context, id chunker.ContentID, hints []hint, charged bool) (*nodeContent, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	it := n.seeding[id]
	a := n.active[id]
	n.mu.Unlock()
	if it != nil {
		return &nodeContent{m: it.Manifest(), item: it}, nil
	}
	if a != nil {
		if dl := a.download(); dl != nil {
			for _, h := range hints {
				dl.AddPeer(h.id, h.addr)
			}
			m, err := dl.Manifest(ctx)
			if err != nil {
				return nil, err
			}
			return &nodeContent{m: m, dl: dl}, nil
		}
		return nil, Errorf(ErrBusy, "the download of %s is starting; try again in a moment", id)
	}
	d, err := n.gwAcquire(id, hints)
	if err != nil {
		return nil, err
	}
	m, err := d.dl.Manifest(ctx)
	if err == nil {
		err = n.gwAdmit(id, m, &n.gw.refusals, charged)
	}
	if err != nil {
		n.gwRelease(id, d)
		return nil, err
	}
	return &nodeContent{m: m, dl: d.dl, release: func() { n.gwRelease(id, d) },
		charge: func() error { return n.gwAdmit(id, m, &n.gw.cutoffs, charged) }}, nil
}

// gwAcquire returns the on-demand download of id, starting it if needed.
func (n *Node) gwAcquire(id chunker.ContentID, hints []hint) (*gwDownload, error) {
	n.gw.admit.Lock() // not while an earlier entry of id is being removed
	defer n.gw.admit.Unlock()
	n.gw.mu.Lock()
	defer n.gw.mu.Unlock()
	if n.isClosed() {
		return nil, ErrClosed
	}
	if n.gw.dls == nil {
		n.gw.dls = map[chunker.ContentID]*gwDownload{}
	}
	d := n.gw.dls[id]
	if d != nil {
		d.refs++
		if d.idle != nil {
			d.idle.Stop()
			d.idle = nil
		}
		for _, h := range hints {
			d.dl.AddPeer(h.id, h.addr)
		}
		return d, nil
	}
	cfg := swarm.Config{
		Logger: n.log, Server: n.srv, DownloadRate: n.cfg.DownloadLimit, PeerRTT: n.peerRTT,
		Chunker:    chunker.DownloadOptions{Sparse: true}, // only the chunks read take disk space
		SkipParity: true,                                  // a cache serves readers, not the swarm's parity
		OnProgress: func(swarm.Progress) { n.gwKick() },
	}
	dl, err := swarm.NewDownload(cfg, swarm.DialerFunc(n.openStream), n.store, id, n.gwEntryDir(id))
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	dl.SetOnDemand(true)
	ctx, cancel := context.WithCancelCause(n.ctx)
	d = &gwDownload{dl: dl, refs: 1, cancel: cancel, done: make(chan struct{})}
	n.gw.dls[id] = d
	n.gwEntryLocked(id).d = d
	for _, h := range hints {
		if h.id != n.PeerID() {
			dl.AddPeer(h.id, h.addr)
		}
	}
	n.goRun(func(context.Context) {
		defer close(d.done)
		lctx, stopLookups := context.WithCancel(ctx)
		lookupDone := make(chan struct{})
		go func() {
			defer close(lookupDone)
			n.findPeers(lctx, job{id: id, hints: hints}, dl, &searchState{}, func() {})
		}()
		err := dl.Run(ctx)
		stopLookups()
		<-lookupDone
		n.gwKick()
		if err != nil && ctx.Err() == nil {
			n.log.Info("gateway download stopped", "content", id.String(), "err", err)
			n.gw.mu.Lock()
			if n.gw.dls[id] == d {
				delete(n.gw.dls, id) // the next reader starts afresh
			}
			n.gw.mu.Unlock()
		}
		// Readers may still read what was verified: close only when the
		// download is dropped (idle, evicted, a get took over, or the
		// node closes).
		<-ctx.Done()
		dl.Close()
		n.gwClosed(id, d)
	})
	return d, nil
}

// gwRelease drops one user of d; the last one arms the idle timer.
func (n *Node) gwRelease(id chunker.ContentID, d *gwDownload) {
	n.gw.mu.Lock()
	defer n.gw.mu.Unlock()
	d.refs--
	if d.refs > 0 || n.gw.dls[id] != d {
		if n.gw.dls[id] != d && d.refs == 0 {
			d.cancel(errGatewayIdle)
		}
		return
	}
	n.gwKick() // an item left idle may be evicted now
	d.idle = time.AfterFunc(gwIdle, func() {
		n.gw.mu.Lock()
		defer n.gw.mu.Unlock()
		if d.refs == 0 && n.gw.dls[id] == d {
			delete(n.gw.dls, id)
			d.cancel(errGatewayIdle)
		}
	})
}

// nodeContent is content opened for the gateway or the CLI's cat.
type nodeContent struct {
	m       *chunker.Manifest
	item    *chunker.Item   // held content, or
	dl      *swarm.Download // content being downloaded
	release func()          // for on-demand downloads
	charge  func() error    // for on-demand downloads: room in the cache to read on
	once    sync.Once
}

func (c *nodeContent) Manifest() *chunker.Manifest { return c.m }

func (c *nodeContent) Close() error {
	if c.release != nil {
		c.once.Do(c.release)
	}
	return nil
}

func (c *nodeContent) NewReader(off, n, readAhead int64) (io.ReadCloser, error) {
	if c.dl != nil {
		r, err := c.dl.NewReader(off, n, readAhead)
		if err != nil || c.charge == nil {
			return r, err
		}
		return &chargedReader{r: r, charge: c.charge}, nil
	}
	if off < 0 || n < 0 || off+n > c.m.Size {
		return nil, fmt.Errorf("seed: range %d+%d outside %d bytes", off, n, c.m.Size)
	}
	return &itemReader{it: c.item, m: c.m, pos: off, end: off + n, at: -1}, nil
}

// itemReader reads a byte range of a held item, chunk by chunk, each
// verified against its leaf by the store.
type itemReader struct {
	it       *chunker.Item
	m        *chunker.Manifest
	pos, end int64
	buf      []byte
	at       int
}

func (r *itemReader) Read(p []byte) (int, error) {
	if r.pos >= r.end {
		return 0, io.EOF
	}
	cs := int64(r.m.ChunkSize)
	g := int(r.pos / cs)
	if r.at != g {
		b, err := r.it.ReadChunk(r.m.ChunkOfData(g), r.buf[:0])
		if err != nil {
			return 0, fmt.Errorf("seed: reading %s: %w", r.it.ID(), err)
		}
		r.buf, r.at = b, g
	}
	lo := int(r.pos - int64(g)*cs)
	n := copy(p, r.buf[lo:min(len(r.buf), lo+int(r.end-r.pos))])
	r.pos += int64(n)
	return n, nil
}

func (r *itemReader) Close() error { return nil }

// chargedReader reads an on-demand download, making room in the gateway
// cache for what it is about to fetch every gwChargeEvery bytes; when
// there is none, the read ends with ErrCacheFull (its focus dropped, so
// the download fetches no more for it).
type chargedReader struct {
	r      io.ReadCloser
	charge func() error
	read   int64 // since the last charge
}

// gwChargeEvery is how many bytes a reader reads between charges; with
// the read-ahead (8 MiB) it stays below gwReserve.
const gwChargeEvery = 4 << 20

func (r *chargedReader) Read(p []byte) (int, error) {
	if r.read >= gwChargeEvery {
		if err := r.charge(); err != nil {
			return 0, err
		}
		r.read = 0
	}
	k, err := r.r.Read(p)
	r.read += int64(k)
	return k, err
}

func (r *chargedReader) Close() error { return r.r.Close() }
