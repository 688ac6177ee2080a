package seed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/swarm"
)

// Publish hashes and encodes path (a file or a folder), adds it to the
// library, seeds it in place and announces it in the DHT. It returns the
// item and its link. progress, if set, gets the bytes hashed so far.
func (n *Node) Publish(ctx context.Context, path string, progress func(Progress)) (Published, error) {
	if n.isClosed() {
		return Published{}, ErrClosed
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Published{}, fmt.Errorf("seed: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return Published{}, fmt.Errorf("seed: cannot publish %s: %w", path, errors.Unwrap(err))
	}
	opts := chunker.PublishOptions{}
	if progress != nil {
		opts.Progress = func(done, total int64) { progress(Progress{Done: done, Total: total}) }
	}
	pub, err := chunker.Publish(ctx, n.store, abs, opts)
	if err != nil {
		return Published{}, fmt.Errorf("seed: publishing %s: %w", path, err)
	}
	it := Item{
		ID:    pub.ID.String(),
		Name:  pub.Manifest.Name,
		Kind:  KindPublished,
		Path:  abs,
		Size:  pub.Manifest.Size,
		Added: time.Now().UTC().Truncate(time.Second),
	}
	if old, ok := n.lib.get(it.ID); ok {
		it.Added = old.Added
	}
	if err := n.seed(pub.ID); err != nil {
		return Published{}, err
	}
	if err := n.lib.put(it); err != nil {
		return Published{}, err
	}
	n.metrics.Publishes.Add(1)
	n.announce(pub.ID)
	return Published{Item: it, Link: n.Link(pub.ID, pub.Manifest.Name)}, nil
}

// Link returns the link to id with this node's advertised addresses as
// peer hints.
func (n *Node) Link(id chunker.ContentID, name string) string {
	l := chunker.Link{ID: id, Name: name}
	for _, a := range n.advertised() {
		if len(l.Peers) < chunker.MaxLinkPeers {
			l.Peers = append(l.Peers, chunker.PeerHint{PeerID: n.PeerID().String(), Addr: a.String()})
		}
	}
	return l.String()
}

// seed opens a stored item and serves it.
func (n *Node) seed(id chunker.ContentID) error {
	it, err := n.store.Open(id)
	if err != nil {
		return fmt.Errorf("seed: opening %s: %w", id, err)
	}
	n.mu.Lock()
	if old := n.seeding[id]; old != nil {
		old.Close()
	}
	n.seeding[id] = it
	n.mu.Unlock()
	src := swarm.ItemSource(it)
	if n.cfg.WrapSource != nil {
		src = n.cfg.WrapSource(src)
	}
	n.srv.Seed(id, src)
	return nil
}

// announce provides id in the DHT in the background; the DHT republishes it
// until Remove or Close.
func (n *Node) announce(id chunker.ContentID) {
	n.goRun(func(ctx context.Context) {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		n.metrics.DHTProvides.Add(1)
		if err := n.dht.Provide(pctx, id); err != nil {
			n.log.Debug("dht provide", "id", id, "err", err)
		}
	})
}

// Get downloads the content of link into the folder out (the content lands
// in out/<name>), from the link's peer hints and the providers the DHT
// finds, keeps seeding it afterwards and returns its library item. Run
// again after an interruption, it resumes. It waits for peers until ctx
// ends.
func (n *Node) Get(ctx context.Context, link, out string, progress func(Progress)) (Item, error) {
	l, err := chunker.ParseLink(link)
	if err != nil {
		return Item{}, fmt.Errorf("%w: %v", ErrBadLink, err)
	}
	if out == "" {
		out = "."
	}
	if out, err = filepath.Abs(out); err != nil {
		return Item{}, fmt.Errorf("seed: %w", err)
	}
	if it, ok := n.lib.get(l.ID.String()); ok && it.Kind != KindPartial {
		return it, nil
	}
	var hints []hint
	for _, h := range l.Peers {
		hh, err := resolveHint(h)
		if err != nil {
			return Item{}, fmt.Errorf("%w: %v", ErrBadLink, err)
		}
		hints = append(hints, hh)
	}
	name := l.Name
	if name == "" {
		name = "?"
	}
	return n.download(ctx, l.ID, name, out, hints, progress)
}

type hint struct {
	id   identity.PeerID
	addr netip.AddrPort
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

func (n *Node) download(ctx context.Context, id chunker.ContentID, name, out string, hints []hint, progress func(Progress)) (Item, error) {
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopOnClose := context.AfterFunc(n.ctx, func() { cancel(ErrClosed) })
	defer stopOnClose()

	cfg := swarm.Config{Logger: n.log, Server: n.srv, DownloadRate: n.cfg.DownloadLimit}
	if progress != nil {
		cfg.OnProgress = func(p swarm.Progress) {
			progress(Progress{Done: p.Verified, Total: p.Size, Peers: p.Peers, Rate: int64(p.Rate)})
		}
	}
	dl, err := swarm.NewDownload(cfg, swarm.DialerFunc(n.openStream), n.store, id, out)
	if err != nil {
		return Item{}, err
	}
	a := &activeDownload{name: name, dl: dl, cancel: cancel, done: make(chan struct{})}
	defer close(a.done)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		dl.Close()
		return Item{}, ErrClosed
	}
	if n.active[id] != nil {
		n.mu.Unlock()
		dl.Close()
		return Item{}, fmt.Errorf("%w %s", ErrBusy, id)
	}
	n.active[id] = a
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.active, id)
		n.mu.Unlock()
	}()

	it := Item{ID: id.String(), Name: name, Kind: KindPartial, Path: filepath.Join(out, name), Added: time.Now().UTC().Truncate(time.Second)}
	if old, ok := n.lib.get(it.ID); ok {
		it = old
	}
	if err := n.lib.put(it); err != nil {
		dl.Close()
		return Item{}, err
	}
	n.metrics.Downloads.Add(1)
	// Announce at once, as a BitTorrent client tells its tracker: other
	// downloaders find us and we serve them what we have verified so far.
	n.announce(id)
	var addrs []netip.AddrPort
	for _, h := range hints {
		if h.id == n.PeerID() {
			continue
		}
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
		n.findPeers(lctx, id, addrs, dl)
	}()
	err = dl.Run(dctx) // on success it has re-encoded the parity it did not fetch
	stopLookups()
	<-lookupDone
	if m := dl.Chunker(); m != nil && m.Manifest() != nil {
		it.Name = m.Manifest().Name
		it.Size = m.Manifest().Size
		it.Path = filepath.Join(out, it.Name)
	}
	p := dl.Progress()
	n.metrics.BytesDown.Add(p.Received)
	n.metrics.ChunksVerified.Add(int64(p.Fetched))
	n.metrics.ChunksRejected.Add(int64(p.BadChunks))
	n.metrics.PeersBanned.Add(int64(p.Banned))
	cerr := dl.Close()
	if err != nil {
		n.lib.put(it) // keep the name learnt so far; progress is in the store
		if c := context.Cause(dctx); c != nil && errors.Is(err, context.Canceled) {
			err = c
		}
		return it, fmt.Errorf("seed: downloading %s: %w", id, err)
	}
	if cerr != nil {
		return it, fmt.Errorf("seed: finishing %s: %w", id, cerr)
	}
	it.Kind = KindDownloaded
	if err := n.seed(id); err != nil {
		return it, err
	}
	if err := n.lib.put(it); err != nil {
		return it, err
	}
	return it, nil
}

// findPeers feeds a download the providers the DHT finds, again and again
// (new peers may join) until ctx ends.
func (n *Node) findPeers(ctx context.Context, id chunker.ContentID, boot []netip.AddrPort, dl *swarm.Download) {
	if len(boot) > 0 && n.dht.TableSize() == 0 {
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n.BootstrapDHT(bctx, boot)
		cancel()
	}
	wait := time.Second
	for {
		n.metrics.DHTLookups.Add(1)
		for p := range n.dht.FindProviders(ctx, id) {
			if p.ID == n.PeerID() {
				continue
			}
			n.book.add(p.ID, p.Addrs...) // openStream dials them all
			for _, a := range p.Addrs {
				dl.AddPeer(p.ID, a)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (n *Node) openStream(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (swarm.Stream, error) {
	if peer.IsZero() { // a hint without a peer ID: whoever answers there
		return n.ov.OpenStream(ctx, peer, addr, swarm.Tag)
	}
	c, err := n.dialAny(ctx, peer, addr)
	if err != nil {
		return nil, err
	}
	s, err := c.OpenStream(ctx, swarm.Tag)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Remove takes id out of the library: it stops seeding and announcing it,
// stops its download and forgets its parity, leaves and manifest. The
// user's files (published sources, downloaded outputs) stay.
func (n *Node) Remove(idText string) error {
	id, err := chunker.ParseID(idText)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotInLibrary, err)
	}
	if _, ok := n.lib.get(id.String()); !ok {
		return fmt.Errorf("%w: %s", ErrNotInLibrary, idText)
	}
	n.mu.Lock()
	a := n.active[id]
	it := n.seeding[id]
	delete(n.seeding, id)
	n.mu.Unlock()
	if a != nil {
		a.cancel(errors.New("removed from the library"))
		<-a.done
	}
	n.srv.Unseed(id)
	if it != nil {
		it.Close()
	}
	n.dht.StopProviding(id)
	if err := n.store.Remove(id); err != nil {
		n.log.Warn("removing from store", "id", id, "err", err)
	}
	_, err = n.lib.remove(id.String())
	return err
}

// restoreLibrary seeds every finished item again and resumes unfinished
// downloads in the background. Items whose store entries are gone or whose
// files changed are logged and skipped.
func (n *Node) restoreLibrary() {
	for _, it := range n.lib.list() {
		id, err := chunker.ParseID(it.ID)
		if err != nil {
			n.log.Warn("library item with a bad ID", "id", it.ID)
			continue
		}
		if it.Kind == KindPartial {
			out := filepath.Dir(it.Path)
			n.goRun(func(ctx context.Context) {
				if _, err := n.download(ctx, id, it.Name, out, nil, nil); err != nil && !errors.Is(err, ErrClosed) {
					n.log.Warn("resuming download", "id", id, "err", err)
				}
			})
			continue
		}
		if err := n.seed(id); err != nil {
			n.log.Warn("cannot seed library item", "id", id, "err", err)
			continue
		}
		n.announce(id)
	}
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}
