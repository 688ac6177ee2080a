package swarm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/swarm/sched"
)

// Config configures a download. The zero value means defaults.
type Config struct {
	// Logger receives the download's logs; nil discards them.
	Logger *slog.Logger
	// Sched tunes the scheduler (queues, timeouts, endgame, bans). Its
	// in-flight caps bound the bytes of requests outstanding, per peer and
	// in total; zero fields take the defaults below, not the scheduler's.
	Sched sched.Config
	// Seed seeds the scheduler's random choices; 0 picks a random seed.
	Seed uint64
	// DownloadRate caps download bytes per second; 0: no cap.
	DownloadRate int64
	// Server, if set, serves the chunks this download has verified to other
	// peers while it runs (and every chunk once it is done, until Close).
	Server *Server
	// OnProgress, if set, is called from the driver goroutine every
	// ProgressEvery and once at the end. It must not block.
	OnProgress func(Progress)
	// ProgressEvery is the progress period. Default 250 ms.
	ProgressEvery time.Duration
	// Chunker tunes the on-disk download (bitmap sync period).
	Chunker chunker.DownloadOptions
}

// Driver defaults for scheduler fields (where they differ from the
// scheduler's own). The per-peer queue stays below the server's default
// MaxPerPeer so a default server never refuses a default downloader as
// busy; a busy refusal backs off for a short time only.
const (
	DefaultMaxInflightBytes     = 16 << 20
	DefaultMaxPeerInflightBytes = 8 << 20
	DefaultMaxQueue             = 24
	DefaultBusyBackoff          = 100 * time.Millisecond
	DefaultMaxBusyBackoff       = 2 * time.Second
)

func (c Config) populate() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Sched.MaxInflightBytes == 0 {
		c.Sched.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if c.Sched.MaxPeerInflightBytes == 0 {
		c.Sched.MaxPeerInflightBytes = DefaultMaxPeerInflightBytes
	}
	if c.Sched.MaxQueue == 0 {
		c.Sched.MaxQueue = DefaultMaxQueue
	}
	if c.Sched.BusyBackoff == 0 {
		c.Sched.BusyBackoff = DefaultBusyBackoff
	}
	if c.Sched.MaxBusyBackoff == 0 {
		c.Sched.MaxBusyBackoff = DefaultMaxBusyBackoff
	}
	if c.Sched.Logger == nil {
		c.Sched.Logger = c.Logger
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 250 * time.Millisecond
	}
	return c
}

// Progress is a snapshot of a download, for a progress bar.
type Progress struct {
	Size      int64         // content bytes (0 until the manifest is known)
	Verified  int64         // content bytes verified and written
	Received  int64         // chunk bytes received (data and parity, duplicates too)
	Rate      float64       // received bytes per second, smoothed
	Peers     int           // peers with an open session
	ETA       time.Duration // estimate; 0 when unknown or done
	Fetched   int           // chunks fetched and verified by this run
	BadChunks int           // chunks that failed verification
	Banned    int           // peers banned for bad data
	Done      bool          // the output is complete
}

// Download fetches one content item from any number of peers. Make it with
// NewDownload, call Run once, AddPeer at any time (before or during Run),
// and Close after Run returned.
type Download struct {
	cfg    Config
	dialer Dialer
	store  *chunker.Store
	id     chunker.ContentID
	outDir string

	// Touched by AddPeer and Run.
	mu      sync.Mutex
	pending []peerAddr    // added, not yet picked up by Run
	known   []peerAddr    // every peer ever added (for metadata)
	wake    chan struct{} // capacity 1: pending is not empty
	dl      *chunker.Download
	closed  bool

	// Progress counters, written by Run's goroutines, read by Progress.
	size, verified, received atomic.Int64
	fetched, bad, peers      atomic.Int64
	banned                   atomic.Int64
	rate                     atomic.Uint64 // float64 bits
	done                     atomic.Bool

	steer steering // readers, pause, rate cap (steer.go, reader.go)
}

type peerAddr struct {
	id   identity.PeerID
	addr netip.AddrPort
}

// NewDownload prepares a download of id into outDir (the content goes to
// outDir/<name>), recorded in store so it resumes after a crash. A download
// already recorded in store resumes and fetches only missing chunks.
func NewDownload(cfg Config, d Dialer, store *chunker.Store, id chunker.ContentID, outDir string) *Download {
	return &Download{
		cfg:    cfg.populate(),
		dialer: d,
		store:  store,
		id:     id,
		outDir: outDir,
		wake:   make(chan struct{}, 1),
	}
}

// AddPeer adds a peer to fetch from. Adding a peer that is already in the
// download is harmless; adding one whose session ended reconnects.
func (d *Download) AddPeer(id identity.PeerID, addr netip.AddrPort) {
	d.mu.Lock()
	d.pending = append(d.pending, peerAddr{id, addr})
	d.known = append(d.known, peerAddr{id, addr})
	d.mu.Unlock()
	d.signal()
}

// Progress returns a snapshot of the download's progress. It is safe to call
// from any goroutine.
func (d *Download) Progress() Progress {
	p := Progress{
		Size:      d.size.Load(),
		Verified:  d.verified.Load(),
		Received:  d.received.Load(),
		Peers:     int(d.peers.Load()),
		Fetched:   int(d.fetched.Load()),
		BadChunks: int(d.bad.Load()),
		Banned:    int(d.banned.Load()),
		Done:      d.done.Load(),
	}
	p.Rate = math.Float64frombits(d.rate.Load())
	if !p.Done && p.Rate > 0 && p.Size > p.Verified {
		p.ETA = time.Duration(float64(p.Size-p.Verified) / p.Rate * float64(time.Second))
	}
	return p
}

// Chunker returns the on-disk download once Run has opened it (nil before).
func (d *Download) Chunker() *chunker.Download {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dl
}

// Finish makes a completed download hold every chunk, parity included, by
// re-encoding the stripes whose parity it did not fetch, so it can serve
// them all. Call it after Run returned nil; it reads the whole output once.
func (d *Download) Finish(ctx context.Context) error {
	dl := d.Chunker()
	if dl == nil || !d.done.Load() {
		return fmt.Errorf("download %s: finish before the download completed", d.id)
	}
	if err := dl.Finish(ctx); err != nil {
		return fmt.Errorf("download %s: %w", d.id, err)
	}
	if srv := d.cfg.Server; srv != nil {
		// Sessions opened before now saw the old bitmap; have updates for
		// the rebuilt parity are not worth it. New sessions see all.
		srv.Seed(d.id, DownloadSource(dl))
	}
	return nil
}

// Close stops serving the download and closes its files. Call it after Run
// returned. It is idempotent.
func (d *Download) Close() error {
	d.mu.Lock()
	dl, was := d.dl, d.closed
	d.closed = true
	d.mu.Unlock()
	if was || dl == nil {
		return nil
	}
	if d.cfg.Server != nil {
		d.cfg.Server.Unseed(d.id)
	}
	return dl.Close()
}

// Run downloads until the output is complete and verified (nil) or ctx ends
// (its cause). With no peers it waits for AddPeer. It returns only after
// every goroutine it started has exited.
func (d *Download) Run(ctx context.Context) error {
	dl, err := d.open(ctx)
	if err != nil {
		d.steer.end(err)
		return err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		dl.Close()
		return ErrClosed
	}
	d.dl = dl
	d.mu.Unlock()
	d.steer.broadcast() // readers waiting for the manifest
	if d.cfg.Server != nil {
		d.cfg.Server.Seed(d.id, DownloadSource(dl))
	}
	r, err := newRun(d, dl)
	if err != nil {
		d.steer.end(err)
		return err
	}
	err = r.loop(ctx)
	d.steer.end(err)
	return err
}

// open resumes the download from the store, or fetches the metadata from
// the peers and creates it.
func (d *Download) open(ctx context.Context) (*chunker.Download, error) {
	dl, err := d.store.OpenDownload(d.id, d.cfg.Chunker)
	if err == nil {
		return dl, nil
	}
	if !errors.Is(err, chunker.ErrNotFound) && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	backoff := 200 * time.Millisecond
	for {
		d.mu.Lock()
		cand := slices.Clone(d.known)
		d.mu.Unlock()
		for _, p := range cand {
			m, leaves, err := FetchMeta(ctx, d.dialer, p.id, p.addr, d.id)
			if err != nil {
				if ctx.Err() != nil {
					return nil, context.Cause(ctx)
				}
				d.cfg.Logger.Info("metadata fetch failed", "peer", p.id.Short(), "err", err)
				continue
			}
			if err := os.MkdirAll(d.outDir, 0o755); err != nil {
				return nil, fmt.Errorf("download %s: %w", d.id, err)
			}
			dl, err := d.store.CreateDownload(m, leaves, d.outDir, d.cfg.Chunker)
			if err != nil {
				return nil, fmt.Errorf("download %s: %w", d.id, err)
			}
			return dl, nil
		}
		// Nobody answered: wait for a new peer, or retry the known ones
		// (they may still be starting) after a growing pause.
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-d.wake:
			d.signal() // the run loop needs it too
		case <-time.After(backoff):
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

func (d *Download) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}
