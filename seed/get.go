package seed

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/swarm"
)

// A download's steps, each in its own function below:
//
//	Get         parse the request; answer from the library when held
//	claim       one download per content ID at a time
//	preparePart find, move or make the hidden partial folder
//	runSwarm    fetch and verify, feeding peers from hints and the DHT
//	install     rename the verified output into place, seed it (the
//	            parity not fetched is rebuilt afterwards: parity.go)
//	abandon     a failure: keep a resumable partial, or leave nothing
//
// Outputs never lie: until every chunk is verified and synced the content
// lives in a hidden folder beside the output (partialDir), and only a
// complete output is renamed to its final name, without replacing anything.

// job is one download request, resolved.
type job struct {
	id         chunker.ContentID
	name       string // from the link until the manifest is known
	out        string // absolute folder the content lands in
	hints      []hint
	wait       time.Duration
	background bool
}

type hint struct {
	id   identity.PeerID
	addr netip.AddrPort
}

// Get downloads the content of req.Link into the folder req.Out (the
// content lands in Out/<name>), from the link's peer hints and the
// providers the DHT finds, keeps seeding it afterwards and returns its
// library item, whose Path exists and holds the verified content. Run again
// after an interruption, it resumes (moving the partial download to a new
// Out when it can). Content already held is copied to Out.
func (n *Node) Get(ctx context.Context, req GetRequest, progress func(Progress)) (Item, error) {
	if n.isClosed() {
		return Item{}, ErrClosed
	}
	l, err := ParseLink(req.Link)
	if err != nil {
		return Item{}, err
	}
	j := job{id: l.ID, name: l.Name, wait: time.Duration(req.Wait), background: req.Background}
	if j.out, err = filepath.Abs(cmpOr(req.Out, ".")); err != nil {
		return Item{}, err
	}
	for _, h := range l.Peers {
		hh, err := resolveHint(h)
		if err != nil {
			return Item{}, fmt.Errorf("%w: %v", ErrBadLink, err)
		}
		if hh.id != n.PeerID() {
			j.hints = append(j.hints, hh)
		}
	}
	if it, ok := n.lib.get(j.id.String()); ok && it.Kind == KindPartial && !n.busy(j.id) && n.recoverInstalled(&it) {
		// Finished before an interruption: seed it, and answer below.
		if err := n.seed(j.id); err != nil {
			return Item{}, err
		}
		n.announce(j.id)
	}
	if it, ok := n.lib.get(j.id.String()); ok && it.Kind != KindPartial {
		if req.Out == "" || filepath.Dir(it.Path) == j.out {
			return it, nil
		}
		return n.copyHeld(ctx, it, j.out)
	}
	if old, ok := n.lib.get(j.id.String()); ok && old.Name != "" {
		j.name = old.Name
	}
	if j.name != "" {
		if err := checkFree(filepath.Join(j.out, j.name)); err != nil {
			return Item{}, err
		}
	}
	if j.background {
		return n.startBackground(j)
	}
	return n.download(ctx, j, progress)
}

// ParseLink reads a link, "shoal:sh1..." or a bare "sh1..." ID.
func ParseLink(s string) (chunker.Link, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, ":") {
		s = chunker.LinkScheme + s
	}
	l, err := chunker.ParseLink(s)
	if err != nil {
		return l, fmt.Errorf("%w %q: %s", ErrBadLink, shorten(s), bareMessage(err, "bad link"))
	}
	return l, nil
}

// ParseID reads a content ID from an ID or a link.
func ParseID(s string) (chunker.ContentID, error) {
	l, err := ParseLink(s)
	return l.ID, err
}

func shorten(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// bareMessage is err's text without package prefixes and without the
// words its caller already says.
func bareMessage(err error, said string) string {
	parts := strings.Split(err.Error(), ": ")
	var out []string
	for _, p := range parts {
		p = strings.TrimPrefix(p, "chunker: ")
		if p == "chunker" || p == said || (len(out) > 0 && out[len(out)-1] == p) {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func resolveHint(h chunker.PeerHint) (hint, error) {
	var out hint
	if h.PeerID != "" {
		id, err := identity.ParsePeerID(h.PeerID)
		if err != nil {
			return out, err
		}
		out.id = id
	}
	ap, err := netip.ParseAddrPort(h.Addr)
	if err != nil {
		ua, rerr := net.ResolveUDPAddr("udp", h.Addr)
		if rerr != nil {
			return out, fmt.Errorf("peer %s: %v", h.Addr, rerr)
		}
		ap = ua.AddrPort()
	}
	out.addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return out, nil
}

// startBackground hands the download to the node: it runs until done,
// removed or the node stops, and resumes on the next start.
func (n *Node) startBackground(j job) (Item, error) {
	it, err := n.preparePart(j)
	if err != nil {
		return Item{}, err
	}
	if n.busy(j.id) {
		return it, Errorf(ErrBusy, "%s is already downloading", it.Name)
	}
	n.goRun(func(ctx context.Context) {
		if _, err := n.download(ctx, j, nil); err != nil && !errors.Is(err, ErrClosed) {
			n.log.Warn("background download stopped", "content", j.id, "err", err)
		}
	})
	return it, nil
}

// download runs one download to its end: installed, or abandoned.
func (n *Node) download(ctx context.Context, j job, progress func(Progress)) (Item, error) {
	a, release, err := n.claim(j)
	if err != nil {
		return Item{}, err
	}
	defer release()
	n.dropGatewayDownload(j.id) // its cache entry would take this download's place in the store
	it, err := n.preparePart(j)
	if err != nil {
		return Item{}, err
	}
	n.log.Info("download started", "content", j.id, "name", it.Name, "out", j.out)
	n.metrics.Downloads.Add(1)
	dl, err := n.runSwarm(ctx, j, a, progress)
	if m := dlManifest(dl); m != nil {
		it.Name, it.Size = m.Name, m.Size
		it.Path = filepath.Join(j.out, m.Name)
	}
	if err == nil {
		a.stage.Store(StageFinishing)
		it, err = n.install(ctx, it, dl)
	} else if dl != nil {
		dl.Close()
	}
	if err != nil {
		return n.abandon(it, dl, tidy(err, j.id))
	}
	n.log.Info("download finished", "content", j.id, "name", it.Name, "path", it.Path)
	return it, nil
}

func dlManifest(dl *swarm.Download) *chunker.Manifest {
	if dl == nil {
		return nil
	}
	if c := dl.Chunker(); c != nil {
		return c.Manifest()
	}
	return nil
}

// claim registers the download so that a second one of the same content
// is refused; release ends it.
func (n *Node) claim(j job) (*activeDownload, func(), error) {
	a := &activeDownload{name: j.name, background: j.background, done: make(chan struct{})}
	a.stage.Store(StageSearching)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, nil, ErrClosed
	}
	if n.active[j.id] != nil {
		return nil, nil, Errorf(ErrBusy, "%s is already downloading (see 'shoal status')", cmpOr(j.name, j.id.String()))
	}
	n.active[j.id] = a
	return a, func() {
		n.mu.Lock()
		delete(n.active, j.id)
		n.mu.Unlock()
		close(a.done)
	}, nil
}

func (n *Node) busy(id chunker.ContentID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.active[id] != nil
}

// runSwarm fetches the content into the partial folder until it is complete
// and verified (nil), ctx ends, nobody served a byte for j.wait
// (ErrNoPeers) or the node closes (ErrClosed). The caller closes the
// returned download (nil only when it could not be made).
func (n *Node) runSwarm(ctx context.Context, j job, a *activeDownload, progress func(Progress)) (*swarm.Download, error) {
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(n.ctx, func() { cancel(ErrClosed) })()
	a.mu.Lock()
	a.cancel = cancel
	a.mu.Unlock()

	dog := newWatchdog(j.wait, func() { cancel(ErrNoPeers) })
	defer dog.stop()
	var search searchState
	var progressMu sync.Mutex // the swarm's driver and the peer search both report
	report := func(p Progress) {
		dog.progress(p.Done)
		if progress != nil {
			progressMu.Lock()
			progress(p)
			progressMu.Unlock()
		}
	}
	// SkipParity: Run returns once the data is complete, verified and
	// synced; the parity not fetched is rebuilt after install (parity.go).
	cfg := swarm.Config{Logger: partsLogger(n.log), Server: n.srv, DownloadRate: n.cfg.DownloadLimit, SkipParity: true, PeerRTT: n.peerRTT,
		Chunker: chunker.DownloadOptions{PageCache: n.cfg.NoDirectIO}}
	cfg.OnProgress = func(p swarm.Progress) {
		if p.Size > 0 {
			a.stage.CompareAndSwap(StageSearching, StageDownloading)
		}
		report(Progress{Done: p.Verified, Total: p.Size, Peers: p.Peers, Rate: int64(p.Rate), Stage: a.stage.Load().(string)})
	}
	dl, err := swarm.NewDownload(cfg, swarm.DialerFunc(n.openStream), n.store, j.id, partialDir(j.out, j.id))
	if err != nil {
		return nil, err
	}
	a.setDownload(dl)
	// Announce at once, as a BitTorrent client tells its tracker: other
	// downloaders find us and we serve them what we have verified so far.
	n.announce(j.id)
	var addrs []netip.AddrPort
	for _, h := range j.hints {
		if !h.id.IsZero() {
			n.book.add(h.id, h.addr)
		}
		dl.AddPeer(h.id, h.addr)
		addrs = append(addrs, h.addr)
	}
	lookupDone := make(chan struct{})
	lctx, stopLookups := context.WithCancel(dctx)
	go func() {
		defer close(lookupDone)
		n.findPeers(lctx, j, dl, &search, func() {
			if a.stage.Load() == StageSearching && progress != nil {
				progressMu.Lock()
				progress(search.progress())
				progressMu.Unlock()
			}
		})
	}()
	err = dl.Run(dctx)
	stopLookups()
	<-lookupDone
	n.countDownload(dl)
	if c := context.Cause(dctx); err != nil && c != nil && errors.Is(err, context.Canceled) {
		err = c
	}
	if errors.Is(err, ErrNoPeers) {
		err = Errorf(ErrNoPeers, "no peer served %s for %s (%s); check the link, or that a node seeding it is running", cmpOr(j.name, j.id.String()), j.wait, search.summary())
	}
	return dl, err
}

func (n *Node) countDownload(dl *swarm.Download) {
	p := dl.Progress()
	n.metrics.BytesDown.Add(p.Received)
	n.metrics.ChunksVerified.Add(int64(p.Fetched))
	n.metrics.ChunksRejected.Add(int64(p.BadChunks))
	n.metrics.PeersBanned.Add(int64(p.Banned))
	n.metrics.addDownload(p)
}

// searchState is what the peer search has done so far, for the status
// line while nothing arrives.
type searchState struct {
	lookups, providers, dhtNodes atomic.Int64
	note                         atomic.Value // string
}

func (s *searchState) progress() Progress {
	note, _ := s.note.Load().(string)
	return Progress{Stage: StageSearching, DHTNodes: int(s.dhtNodes.Load()), Providers: int(s.providers.Load()),
		Lookups: int(s.lookups.Load()), Note: note}
}

func (s *searchState) summary() string {
	p := s.progress()
	msg := fmt.Sprintf("%d DHT lookups (%d nodes known) found %d providers", p.Lookups, p.DHTNodes, p.Providers)
	if p.DHTNodes == 0 {
		msg = "the DHT has no nodes: no bootstrap peer answered"
	}
	if p.Note != "" {
		msg = p.Note + "; " + msg
	}
	return msg
}

// searchingPause is the pause between DHT lookups while providers are known
// but none has served the metadata yet, or the routing table was empty, for
// at most maxQuickLookups lookups; otherwise the pause starts at 1 s and
// doubles to 30 s.
const (
	searchingPause  = 250 * time.Millisecond
	maxQuickLookups = 8
)

// findPeers feeds a download the link's hints and the providers the DHT
// finds, again and again (new peers may join) until ctx ends, and calls
// changed after each step.
func (n *Node) findPeers(ctx context.Context, j job, dl *swarm.Download, s *searchState, changed func()) {
	var addrs []netip.AddrPort
	for _, h := range j.hints {
		addrs = append(addrs, h.addr)
	}
	s.dhtNodes.Store(int64(n.dht.TableSize()))
	changed() // say at once that the search began
	if len(j.hints) > 0 {
		n.probeHints(ctx, j.hints, s)
		changed()
	}
	if len(addrs) > 0 && n.dht.TableSize() == 0 {
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n.BootstrapDHT(bctx, addrs)
		cancel()
	}
	seen := map[identity.PeerID]bool{}
	wait, quick := time.Second, 0
	for {
		n.metrics.DHTLookups.Add(1)
		table := n.dht.TableSize()
		s.dhtNodes.Store(int64(table))
		lookupStart, found := time.Now(), 0
		for p := range n.dht.FindProviders(ctx, j.id) {
			if p.ID == n.PeerID() {
				continue
			}
			if !seen[p.ID] {
				seen[p.ID] = true
				s.providers.Add(1)
				found++
				n.log.Debug("provider found", "content", j.id, "peer", p.ID.Short(), "addrs", p.Addrs, "after", time.Since(lookupStart))
			}
			n.book.add(p.ID, p.Addrs...) // openStream dials them all
			for _, a := range p.Addrs {
				dl.AddPeer(p.ID, a)
			}
		}
		s.lookups.Add(1)
		n.log.Debug("DHT lookup done", "content", j.id, "new_providers", found, "providers", len(seen), "took", time.Since(lookupStart))
		changed()
		// Until a peer has served the metadata, look again soon (up to
		// maxQuickLookups times, then backing off as usual): a lookup
		// from a table still filling (a node just started) or through
		// storing nodes crowded with Sybil records can miss the publisher,
		// and the next one, from a fuller table, usually finds it. A
		// lookup from an empty table (the node's bootstrap still under
		// way) asks nobody, so it is retried as soon.
		pause := wait
		if dl.Progress().Size == 0 && (len(seen) > 0 || table == 0) && quick < maxQuickLookups {
			pause = searchingPause
			quick++
		} else {
			wait = min(2*wait, 30*time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// probeHints dials the link's hinted peers once, to say early when none
// answers.
func (n *Node) probeHints(ctx context.Context, hints []hint, s *searchState) {
	var dead []string
	for _, h := range hints {
		if h.id.IsZero() {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := n.ov.Dial(pctx, h.id, h.addr)
		cancel()
		if err != nil && ctx.Err() == nil {
			dead = append(dead, h.addr.String())
		}
	}
	if len(dead) > 0 {
		s.note.Store(fmt.Sprintf("hinted peer %s does not answer", strings.Join(dead, ", ")))
	}
}

// peerRTT is the smoothed round trip of the connection to peer (0: none),
// for a download's metadata silence limit (swarm.Config.PeerRTT).
func (n *Node) peerRTT(peer identity.PeerID) time.Duration {
	if c := n.ov.Conn(peer); c != nil {
		return c.QUIC().ConnectionStats().SmoothedRTT
	}
	return 0
}

func (n *Node) openStream(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (swarm.Stream, error) {
	if peer.IsZero() { // a hint without a peer ID: whoever answers there
		return n.ov.OpenStream(ctx, peer, addr, swarm.Tag)
	}
	c, err := n.dialAny(ctx, peer, addr)
	if err != nil {
		return nil, err
	}
	return n.ov.OpenBulkStream(ctx, c, swarm.Tag)
}

// watchdog calls fire when no progress came for limit (0: never).
type watchdog struct {
	limit time.Duration
	timer *time.Timer
	done  atomic.Int64
}

func newWatchdog(limit time.Duration, fire func()) *watchdog {
	w := &watchdog{limit: limit}
	if limit > 0 {
		w.timer = time.AfterFunc(limit, fire)
	}
	return w
}

// progress rearms the watchdog when bytes arrived.
func (w *watchdog) progress(done int64) {
	if w.timer != nil && done > w.done.Load() {
		w.done.Store(done)
		w.timer.Reset(w.limit)
	}
}

func (w *watchdog) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// tidy makes a download's error read once: the layers below each name the
// content ID, which the user's command already names; a full disk says
// where, once.
func tidy(err error, id chunker.ContentID) error {
	if Code(err) == CodeDiskFull {
		msg := "the disk is full"
		var pe *fs.PathError
		if errors.As(err, &pe) {
			dir := filepath.Dir(pe.Path)
			if strings.HasPrefix(filepath.Base(dir), partialPrefix) {
				dir = filepath.Dir(dir)
			}
			msg += " (writing in " + dir + ")"
		}
		return &codedError{sentinel: err, msg: msg}
	}
	msg := err.Error()
	ids := id.String()
	for _, layer := range []string{"creating download " + ids + ": ", "opening download " + ids + ": ", "download " + ids + ": ", ids + ": ", "swarm: ", "chunker: "} {
		msg = strings.ReplaceAll(msg, layer, "")
	}
	return &codedError{sentinel: err, msg: msg}
}
