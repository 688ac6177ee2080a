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
	// SkipParity leaves the parity chunks that were not fetched missing
	// when the download completes: Run returns as soon as the data is
	// complete, verified and synced. By default Run re-encodes them
	// (reading the output once) so the download can serve every chunk.
	// The seed package sets it and rebuilds the parity after installing
	// the output (chunker.Item.RebuildParity), off the user's wait;
	// benchmarks that time the transfer alone set it too.
	SkipParity bool

	// ManifestParallel is how many peers are asked for the manifest at
	// once. A manifest is a few hundred bytes, and every peer that does
	// not answer costs a silence before the next is asked; the connections
	// are the ones the download's sessions use next. Default 8.
	ManifestParallel int
	// MetaParallel is how many peers are asked for the leaf layer at once
	// (it grows with the content: 32 bytes a chunk). A peer asks for it
	// once its manifest is verified, in the order the manifests arrived;
	// the others wait their turn, which comes when a leaf fetch fails,
	// goes silent or is older than MetaHedge. The first verified answer
	// wins. Default 3.
	MetaParallel int
	// MetaTimeout bounds one metadata fetch from one peer. Default 20 s.
	MetaTimeout time.Duration
	// MetaHedge: a fetch without a complete answer after this long (a
	// leaf fetch: this long after its manifest) no longer counts against
	// ManifestParallel (or MetaParallel), so another peer is asked beside
	// it. Default 2 s.
	MetaHedge time.Duration
	// MetaIdle: a fetch whose peer has sent nothing since the request went
	// out or since its last bytes, for MetaIdle or longer where the link
	// is slower (four times the connection's round trip, from PeerRTT, or
	// twice the longest stream open where it is unknown; four times the
	// peer's wait before its first answer), is silent: it no longer counts
	// against ManifestParallel (or MetaParallel), and each silent fetch
	// lets one more peer be asked at once, so stallers widen the search
	// instead of holding it up. A slow honest peer judged silent keeps its
	// fetch (it only lets one more in) unless MaxMetaFetches are in flight
	// and it is the longest-silent. Default 25 ms.
	MetaIdle time.Duration
	// PeerRTT, if set, returns the smoothed round trip of the connection
	// to peer (0 if unknown); the silence limit above follows it.
	PeerRTT func(identity.PeerID) time.Duration
	// MaxMetaFetches caps the metadata fetches in flight. When it is
	// reached and a peer waits to be asked, the fetch silent the longest
	// is cancelled (and its peer backed off like a failure). Default 32.
	MaxMetaFetches int
	// MetaRetry is the first pause before a peer whose metadata fetch
	// failed is asked again; it doubles with every failure up to
	// MaxMetaRetry. Defaults 500 ms and 30 s.
	MetaRetry, MaxMetaRetry time.Duration
	// MaxPeers caps the peers a download remembers; AddPeer of a new peer
	// beyond it is dropped and counted in Progress.PeersDropped. Default
	// 1024.
	MaxPeers int
	// MaxSessions caps the sessions the download runs at once (a session
	// is a goroutine, a control stream and, for a peer with no other use
	// for it, a connection). The other known peers wait for a slot in a
	// queue (at most MaxPeers long). A session that ends (the peer does not
	// have the content, cannot be reached, fails its hello, or drops)
	// gives up its slot; its peer waits again, not before a pause of
	// 250 ms doubling to 5 s while its sessions fail, or to 30 s while
	// more peers are known than MaxSessions (250 ms after one that
	// joined). A free slot goes to the ready peer with the fewest
	// sessions without a verified chunk since its last useful one, the
	// longest waiting among equals. Default 64.
	MaxSessions int
	// SessionIdle: while a peer waits for a slot and is ready to take it,
	// a session that has brought no verified chunk for SessionIdle (since
	// it started or since its last chunk) yields its slot: it is closed
	// and its peer waits again, the longest-idle first. Peers that hold
	// chunks we need and send them keep their slots. Default 5 s.
	SessionIdle time.Duration
	// EmptySessionIdle replaces SessionIdle for a session whose peer
	// joined announcing no chunk and has announced none since: it has
	// nothing to send, so a crowd of such peers (Sybils that accept
	// sessions and stay silent) passes the slots around quickly instead of
	// holding each for SessionIdle. Default 500 ms.
	EmptySessionIdle time.Duration
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

	DefaultManifestParallel    = 8
	DefaultMetaParallel        = 3
	DefaultMetaTimeout         = 20 * time.Second
	DefaultMetaHedge           = 2 * time.Second
	DefaultMetaIdle            = 25 * time.Millisecond
	DefaultMaxMetaFetch        = 32
	DefaultMetaRetry           = 500 * time.Millisecond
	DefaultMaxMetaRetry        = 30 * time.Second
	DefaultMaxPeers            = 1024
	DefaultMaxDownloadSessions = 64
	DefaultSessionIdle         = 5 * time.Second
	DefaultEmptySessionIdle    = 500 * time.Millisecond
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
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 250 * time.Millisecond
	}
	if c.MetaParallel <= 0 {
		c.MetaParallel = DefaultMetaParallel
	}
	if c.ManifestParallel <= 0 {
		c.ManifestParallel = max(DefaultManifestParallel, c.MetaParallel)
	}
	if c.MetaTimeout <= 0 {
		c.MetaTimeout = DefaultMetaTimeout
	}
	if c.MetaHedge <= 0 {
		c.MetaHedge = DefaultMetaHedge
	}
	if c.MetaIdle <= 0 {
		c.MetaIdle = DefaultMetaIdle
	}
	if c.MaxMetaFetches <= 0 {
		c.MaxMetaFetches = max(DefaultMaxMetaFetch, c.ManifestParallel)
	}
	if c.MetaRetry <= 0 {
		c.MetaRetry = DefaultMetaRetry
	}
	if c.MaxMetaRetry < c.MetaRetry {
		c.MaxMetaRetry = max(c.MetaRetry, DefaultMaxMetaRetry)
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = DefaultMaxPeers
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxDownloadSessions
	}
	if c.SessionIdle <= 0 {
		c.SessionIdle = DefaultSessionIdle
	}
	if c.EmptySessionIdle <= 0 {
		c.EmptySessionIdle = DefaultEmptySessionIdle
	}
	return c
}

// Progress is a snapshot of a download, for a progress bar.
type Progress struct {
	Size         int64         // content bytes (0 until the manifest is known)
	Verified     int64         // content bytes verified and written
	Received     int64         // chunk bytes received (data and parity, duplicates too)
	Rate         float64       // received bytes per second, smoothed
	Peers        int           // peers with an open session
	ETA          time.Duration // estimate; 0 when unknown or done
	Fetched      int           // chunks fetched and verified by this run
	BadChunks    int           // chunks that failed verification
	Banned       int           // peers banned for bad data (chunks or metadata)
	MetaFetches  int           // metadata fetches started (one per peer asked)
	MetaSilent   int           // metadata fetches that went silent (see Config.MetaIdle)
	MetaEvicted  int           // silent metadata fetches cancelled for another peer (MaxMetaFetches)
	PeersDropped int           // AddPeer calls refused because MaxPeers peers are known
	// Session slots (Config.MaxSessions): sessions running now, the most
	// that ran at once, peers waiting for a slot now, and sessions that
	// gave up their slot while peers waited (ended without joining, or
	// cut short after SessionIdle without a verified chunk).
	Sessions        int
	SessionsPeak    int
	SessionsWaiting int
	SessionsYielded int
	Done            bool // the output is complete
	// FetchedFull is how many of Fetched came from peers that had every
	// chunk (publishers and finished downloaders), Sched the scheduler's
	// tallies (requests, duplicates, parity, timeouts, refusals), as of
	// the last progress report: where a swarm's bytes went.
	FetchedFull int
	Sched       sched.Counts
}

// Download fetches one content item from any number of peers.
//
// Lifecycle: NewDownload builds it (nothing runs yet); Run(ctx) does the
// whole download and returns after every goroutine it started has exited;
// Close (idempotent) stops a Run still going, waits for it, stops serving
// the download and closes its files. AddPeer and Progress may be called at
// any time from any goroutine.
type Download struct {
	cfg    Config
	dialer Dialer
	store  *chunker.Store
	id     chunker.ContentID
	outDir string
	clog   *chunkLog

	life      context.Context // cancelled by Close
	closeLife context.CancelCauseFunc
	ran       atomic.Bool   // Run was called
	runDone   chan struct{} // closed when Run returns (if it was called)

	// Touched by AddPeer, Run and Close.
	mu      sync.Mutex
	known   map[identity.PeerID]*knownPeer // at most cfg.MaxPeers
	pending []identity.PeerID              // known peers Run has to (re)connect; no duplicates
	wake    chan struct{}                  // capacity 1: pending is not empty
	dl      *chunker.Download
	closed  bool

	// Progress counters, written by Run's goroutines, read by Progress.
	size, verified, received atomic.Int64
	fetched, bad, peers      atomic.Int64
	banned, metaFetches      atomic.Int64
	metaSilent, metaEvicted  atomic.Int64
	dropped, fetchedFull     atomic.Int64
	sessions, sessionsPeak   atomic.Int64
	sessionsWaiting          atomic.Int64
	sessionsYielded          atomic.Int64
	counts                   atomic.Pointer[sched.Counts]
	rate                     atomic.Uint64 // float64 bits
	done                     atomic.Bool

	steer steering // readers, pause, rate cap (steer.go, reader.go)
}

// knownPeer is what a download remembers of a peer. Guarded by Download.mu.
type knownPeer struct {
	addr     netip.AddrPort
	queued   bool       // in Download.pending
	banned   bool       // sent bad data: never used again by this download
	fails    int        // metadata fetches failed in a row
	nextMeta time.Time  // not asked for metadata before this
	fetch    *metaFetch // the metadata fetch in flight (nil: none)
}

// metaFetch is one metadata fetch in flight from a known peer.
type metaFetch struct {
	started  time.Time
	watch    *metaWatch
	cancel   context.CancelFunc
	silent   bool          // seen silent (counted once)
	evicted  bool          // cancelled for another peer
	waiting  bool          // has the manifest and waits for its leaf turn
	leaves   bool          // fetching the leaf layer
	turn     chan struct{} // closed when it may fetch the leaf layer
	verified time.Time     // when it verified the manifest
}

type peerAddr struct {
	id   identity.PeerID
	addr netip.AddrPort
}

// NewDownload prepares a download of id into outDir (the content goes to
// outDir/<name>), recorded in store so it resumes after a crash. A download
// already recorded in store resumes and fetches only missing chunks. It
// starts nothing; call Run.
func NewDownload(cfg Config, d Dialer, store *chunker.Store, id chunker.ContentID, outDir string) (*Download, error) {
	switch {
	case d == nil:
		return nil, errors.New("swarm: new download: no dialer")
	case store == nil:
		return nil, errors.New("swarm: new download: no store")
	case outDir == "":
		return nil, errors.New("swarm: new download: no output folder")
	}
	cfg = cfg.populate()
	life, closeLife := context.WithCancelCause(context.Background())
	return &Download{
		cfg:       cfg,
		dialer:    d,
		store:     store,
		id:        id,
		outDir:    outDir,
		clog:      newChunkLog(cfg.Logger),
		life:      life,
		closeLife: closeLife,
		runDone:   make(chan struct{}),
		known:     make(map[identity.PeerID]*knownPeer),
		wake:      make(chan struct{}, 1),
	}, nil
}

// AddPeer adds a peer to fetch from. Adding a known peer again only updates
// its address (used at its next reconnect); a banned peer stays banned.
// Beyond Config.MaxPeers known peers new ones are dropped (and counted in
// Progress.PeersDropped): a flood of addresses cannot grow the download.
func (d *Download) AddPeer(id identity.PeerID, addr netip.AddrPort) {
	d.mu.Lock()
	kp := d.known[id]
	switch {
	case kp == nil && len(d.known) >= d.cfg.MaxPeers:
		d.mu.Unlock()
		d.dropped.Add(1)
		return
	case kp == nil:
		kp = &knownPeer{addr: addr}
		d.known[id] = kp
	case kp.banned || kp.addr == addr:
		d.mu.Unlock()
		return
	default:
		kp.addr = addr
	}
	if !kp.queued {
		kp.queued = true
		d.pending = append(d.pending, id)
	}
	d.mu.Unlock()
	d.signal()
}

// takePending returns the peers added or readdressed since the last call.
func (d *Download) takePending() []peerAddr {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]peerAddr, 0, len(d.pending))
	for _, id := range d.pending {
		kp := d.known[id]
		kp.queued = false
		if !kp.banned {
			out = append(out, peerAddr{id, kp.addr})
		}
	}
	d.pending = d.pending[:0]
	return out
}

// ban marks a peer that sent bad data; it reports whether the peer was not
// banned before.
func (d *Download) ban(id identity.PeerID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	kp := d.known[id]
	if kp == nil || kp.banned {
		return false
	}
	kp.banned = true
	d.banned.Add(1)
	return true
}

// Progress returns a snapshot of the download's progress. It is safe to call
// from any goroutine.
func (d *Download) Progress() Progress {
	p := Progress{
		Size:            d.size.Load(),
		Verified:        d.verified.Load(),
		Received:        d.received.Load(),
		Peers:           int(d.peers.Load()),
		Fetched:         int(d.fetched.Load()),
		BadChunks:       int(d.bad.Load()),
		Banned:          int(d.banned.Load()),
		MetaFetches:     int(d.metaFetches.Load()),
		MetaSilent:      int(d.metaSilent.Load()),
		MetaEvicted:     int(d.metaEvicted.Load()),
		PeersDropped:    int(d.dropped.Load()),
		Sessions:        int(d.sessions.Load()),
		SessionsPeak:    int(d.sessionsPeak.Load()),
		SessionsWaiting: int(d.sessionsWaiting.Load()),
		SessionsYielded: int(d.sessionsYielded.Load()),
		Done:            d.done.Load(),
		FetchedFull:     int(d.fetchedFull.Load()),
	}
	if c := d.counts.Load(); c != nil {
		p.Sched = *c
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

// Close stops a Run still going and waits for it to return, stops serving
// the download and closes its files. It is idempotent.
func (d *Download) Close() error {
	d.closeLife(ErrClosed)
	if d.ran.Load() {
		<-d.runDone
	}
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

// Run downloads until the output is complete, verified and synced, and
// (unless Config.SkipParity) the parity it did not fetch is re-encoded, so
// the download can serve every chunk: then it returns nil. It returns
// ctx's cause when ctx ends, ErrClosed after Close, or the error that
// stopped it (the disk failed). With no peers it waits for AddPeer. It
// returns only after every goroutine it started has exited. Call it once.
func (d *Download) Run(ctx context.Context) error {
	if d.ran.Swap(true) {
		return errors.New("swarm: download: Run called twice")
	}
	defer close(d.runDone)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(d.life, func() { cancel(ErrClosed) })
	defer stop()

	dl, err := d.open(ctx)
	if err != nil {
		d.steer.end(err)
		return err
	}
	if dl.Rebuilt() {
		d.cfg.Logger.Warn("damaged bitmap rebuilt from the output", "content", d.id.String(), "chunks", dl.Have().Count())
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		dl.Close()
		d.steer.end(ErrClosed)
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
	m, leaves, err := d.fetchMeta(ctx)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.outDir, 0o755); err != nil {
		return nil, fmt.Errorf("download %s: %w", d.id, err)
	}
	dl, err = d.store.CreateDownload(m, leaves, d.outDir, d.cfg.Chunker)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", d.id, err)
	}
	return dl, nil
}

type metaResult struct {
	peer   identity.PeerID
	m      *chunker.Manifest
	leaves *chunker.LeafLayer
	err    error
}

// fetchMeta asks up to ManifestParallel known peers at once for the
// manifest and then, one verified manifest in hand, up to MetaParallel of
// them for the leaf layer (the peers whose manifests came first; the others
// wait their turn), each fetch bounded by MetaTimeout, and returns the first
// verified answer (the other fetches are cancelled). A fetch stops counting
// when its peer goes silent (MetaIdle, or longer on a slow link) or when it
// is older than MetaHedge, and each silent fetch lets one more peer be
// asked, so N stallers ahead of an honest peer cost about
// log3(N/ManifestParallel) silences, not N/ManifestParallel timeouts. At
// most MaxMetaFetches are in flight; beyond, the longest-silent is
// cancelled for a waiting peer. A peer whose answer fails verification is
// banned for this download, like a peer that sends a bad chunk; a peer that
// fails otherwise (does not have the content, times out, stalls, cannot be
// reached) is asked again only after a pause that doubles with each
// failure (MetaRetry up to MaxMetaRetry), so a link naming the wrong peer
// costs that peer a handful of requests, not a loop.
func (d *Download) fetchMeta(ctx context.Context) (*chunker.Manifest, *chunker.LeafLayer, error) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan metaResult, d.cfg.MaxMetaFetches)
	poke := make(chan struct{}, 1)
	inflight := 0
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		next := d.startMeta(ctx, now, &wg, results, poke, &inflight)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(now), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil, nil, context.Cause(ctx)
		case res := <-results:
			inflight--
			if res.err == nil {
				d.cfg.Logger.Debug("metadata fetched", "peer", res.peer.Short(), "content", d.id.String(), "after", time.Since(start),
					"fetches", d.metaFetches.Load(), "silent", d.metaSilent.Load())
				return res.m, res.leaves, nil
			}
			d.metaFailed(res, time.Now())
		case <-d.wake:
			// New peers: start fetches from them at once. Run's loop
			// picks the same peers up from pending for sessions later.
		case <-poke: // a request went out or a manifest was verified
		case <-timer.C:
		}
	}
}

// metaState is where a fetch in flight stands at now, and when that
// changes if nothing arrives (zero: not by itself). A fetch waiting for
// its leaf turn is moving: its peer answered.
func (d *Download) metaState(f *metaFetch, now time.Time) (silent, aged bool, change time.Time) {
	if f.waiting {
		return false, false, time.Time{}
	}
	hedge := f.started.Add(d.cfg.MetaHedge)
	if f.leaves {
		hedge = f.verified.Add(d.cfg.MetaHedge)
	}
	at, ok := f.watch.silentAt(d.cfg.MetaIdle)
	switch {
	case ok && !now.Before(at):
		return true, false, time.Time{}
	case !now.Before(hedge):
		if ok {
			return false, true, at
		}
		return false, true, time.Time{}
	case ok && at.Before(hedge):
		return false, false, at
	}
	return false, false, hedge
}

// startMeta starts metadata fetches from eligible peers while the moving
// fetches (neither silent nor older than MetaHedge) are fewer than
// ManifestParallel plus the silent ones, and fewer than MaxMetaFetches
// are in flight (evicting the longest-silent fetch when a peer waits at
// that cap); it gives fetches holding a verified manifest their leaf turn
// while the moving leaf fetches are fewer than MetaParallel plus the
// silent ones. It returns when it must be called again: when a waiting
// peer becomes eligible or a fetch may go silent or age (zero: nothing to
// wait for).
func (d *Download) startMeta(ctx context.Context, now time.Time, wg *sync.WaitGroup, results chan<- metaResult, poke chan struct{}, inflight *int) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	var next time.Time
	later := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	moving, silent := 0, 0
	leafMoving, leafSilent := 0, 0
	var queue []*metaFetch // verified manifests waiting for their leaf turn
	var oldest *metaFetch  // silent the longest, not yet evicted
	var oldestAt time.Time
	for _, kp := range d.known {
		f := kp.fetch
		if f == nil {
			continue
		}
		if f.waiting {
			queue = append(queue, f)
		}
		s, aged, change := d.metaState(f, now)
		later(change)
		switch {
		case s:
			silent++
			if f.leaves {
				leafSilent++
			}
			if !f.silent {
				f.silent = true
				d.metaSilent.Add(1)
			}
			if at, _ := f.watch.silentAt(d.cfg.MetaIdle); !f.evicted && (oldest == nil || at.Before(oldestAt)) {
				oldest, oldestAt = f, at
			}
		case !aged:
			moving++
			if f.leaves {
				leafMoving++
			}
		}
	}
	slices.SortFunc(queue, func(a, b *metaFetch) int { return a.verified.Compare(b.verified) })
	for _, f := range queue {
		if leafMoving >= d.cfg.MetaParallel+leafSilent {
			break // a leaf fetch that ends, goes silent or ages calls us again
		}
		leafMoving++
		f.waiting, f.leaves = false, true
		f.watch.arrived() // silence counts from the turn, not the manifest
		close(f.turn)
	}
	poker := func() {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	for id, kp := range d.known {
		if kp.banned || kp.fetch != nil {
			continue
		}
		if kp.nextMeta.After(now) {
			later(kp.nextMeta)
			continue
		}
		if moving >= d.cfg.ManifestParallel+silent {
			continue // a fetch that goes silent or ages calls us again
		}
		if *inflight >= d.cfg.MaxMetaFetches {
			if oldest != nil { // its result frees the slot and calls us again
				oldest.evicted = true
				oldest.cancel()
				oldest = nil
				d.metaEvicted.Add(1)
			}
			continue
		}
		moving++
		*inflight++
		d.metaFetches.Add(1)
		fctx, cancel := context.WithTimeout(ctx, d.cfg.MetaTimeout)
		w := &metaWatch{poke: poker}
		if rtt := d.cfg.PeerRTT; rtt != nil {
			w.rtt = func() time.Duration { return rtt(id) }
		}
		f := &metaFetch{started: now, watch: w, cancel: cancel, turn: make(chan struct{})}
		w.turn = func(ctx context.Context) error { return d.leafTurn(ctx, kp, f, poker) }
		kp.fetch = f
		later(now.Add(d.cfg.MetaHedge))
		addr := kp.addr
		d.clog.debug("metadata fetch started", "peer", id.Short(), "addr", addr, "in_flight", *inflight, "silent", silent)
		wg.Go(func() {
			defer cancel()
			m, leaves, err := fetchMeta(fctx, d.dialer, id, addr, d.id, w)
			if err != nil && fctx.Err() != nil && ctx.Err() == nil {
				if errors.Is(fctx.Err(), context.DeadlineExceeded) {
					err = fmt.Errorf("metadata from %s: no answer within %v: %w", id.Short(), d.cfg.MetaTimeout, err)
				} else {
					err = fmt.Errorf("metadata from %s: silent, given up for another peer: %w", id.Short(), err)
				}
			}
			results <- metaResult{peer: id, m: m, leaves: leaves, err: err}
		})
	}
	return next
}

// leafTurn is called by kp's fetch f once its manifest is verified: it
// waits until startMeta gives f its turn to ask for the leaf layer (f.turn
// closed) or ctx ends.
func (d *Download) leafTurn(ctx context.Context, kp *knownPeer, f *metaFetch, poke func()) error {
	d.mu.Lock()
	if kp.fetch == f && !f.leaves { // still this fetch, not yet let through
		f.waiting, f.verified = true, time.Now()
	}
	d.mu.Unlock()
	poke()
	select {
	case <-f.turn:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// metaFailed records a failed metadata fetch: bad data bans the peer, any
// other failure backs it off.
func (d *Download) metaFailed(res metaResult, now time.Time) {
	if errIsBadData(res.err) {
		if d.ban(res.peer) {
			d.cfg.Logger.Warn("peer banned for bad metadata", "peer", res.peer.Short(), "content", d.id.String(), "err", res.err)
		}
	} else {
		d.clog.debug("metadata fetch failed", "peer", res.peer.Short(), "content", d.id.String(), "err", res.err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	kp := d.known[res.peer]
	kp.fetch = nil
	kp.fails++
	pause := d.cfg.MetaRetry << min(kp.fails-1, 20)
	kp.nextMeta = now.Add(min(pause, d.cfg.MaxMetaRetry))
}

func (d *Download) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}
