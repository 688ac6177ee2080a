package seed

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/swarm"
)

// Publish hashes and encodes req.Path (a file or a folder), adds it to the
// library, seeds it in place and announces it in the DHT. It returns the
// item and its link. progress, if set, gets the bytes hashed so far.
func (n *Node) Publish(ctx context.Context, req PublishRequest, progress func(Progress)) (Published, error) {
	if n.isClosed() {
		return Published{}, ErrClosed
	}
	abs, err := filepath.Abs(req.Path)
	if err != nil {
		return Published{}, err
	}
	if _, err := os.Stat(abs); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Published{}, Errorf(ErrNotFound, "%s does not exist", req.Path)
		}
		return Published{}, fmt.Errorf("cannot publish %s: %w", req.Path, errors.Unwrap(err))
	}
	var res Published
	opts := chunker.PublishOptions{FollowSymlinks: req.FollowSymlinks, Skipped: func(rel string) {
		res.Skipped = append(res.Skipped, rel)
	}}
	if progress != nil {
		opts.Progress = func(done, total int64) { progress(Progress{Done: done, Total: total}) }
	}
	pub, err := chunker.Publish(ctx, n.store, abs, opts)
	if err != nil {
		return Published{}, fmt.Errorf("publishing %s: %w", req.Path, err)
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
	n.log.Info("published", "content", pub.ID, "name", it.Name, "skipped", len(res.Skipped))
	res.Item = it
	res.Link = n.linkOf(pub.ID, pub.Manifest.Name)
	res.Item.Link = res.Link
	return res, nil
}

// Link returns the link of a library item (by ID or link), with this node
// as a peer hint.
func (n *Node) Link(ctx context.Context, idText string) (string, error) {
	id, err := ParseID(idText)
	if err != nil {
		return "", err
	}
	it, ok := n.lib.get(id.String())
	if !ok {
		return "", Errorf(ErrNotFound, "%s is not in the library (see 'shoal ls')", id)
	}
	return n.linkOf(id, it.Name), nil
}

// linkOf returns the link to id with this node's advertised addresses as
// peer hints.
func (n *Node) linkOf(id chunker.ContentID, name string) string {
	l := chunker.Link{ID: id, Name: name}
	for _, a := range n.advertised() {
		if len(l.Peers) < chunker.MaxLinkPeers {
			l.Peers = append(l.Peers, chunker.PeerHint{PeerID: n.PeerID().String(), Addr: a.String()})
		}
	}
	return l.String()
}

// seed opens a stored item and serves it. A downloaded item that lacks
// parity serves what it holds and is queued for its parity (parity.go).
func (n *Node) seed(id chunker.ContentID) error {
	it, err := n.store.Open(id)
	if err != nil {
		return fmt.Errorf("opening %s: %w", id, err)
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
	if it.MissingParity() > 0 {
		n.queueParity(id)
	}
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
			n.log.Debug("dht provide", "content", id, "err", err)
		}
	})
}

// Remove takes an item (by ID or link) out of the library: it stops
// seeding and announcing it and stops its download. A finished output or a
// published source stays on disk; an unfinished download's hidden partial
// folder is deleted (it is not the user's file and holds no complete
// content).
func (n *Node) Remove(ctx context.Context, idText string) (Item, error) {
	id, err := ParseID(idText)
	if err != nil {
		return Item{}, err
	}
	it, ok := n.lib.get(id.String())
	if !ok {
		if it, err := n.gwRemove(id, errors.New("seed: removed from the gateway cache")); err == nil {
			return it, nil
		}
		return Item{}, Errorf(ErrNotFound, "%s is not in the library (see 'shoal ls')", id)
	}
	n.mu.Lock()
	a := n.active[id]
	held := n.seeding[id]
	delete(n.seeding, id)
	n.mu.Unlock()
	if a != nil {
		a.stop(errors.New("removed from the library"))
		<-a.done
	}
	n.srv.Unseed(id)
	if held != nil {
		held.Close()
	}
	n.dht.StopProviding(id)
	if err := n.store.Remove(id); err != nil && !errors.Is(err, chunker.ErrNotFound) {
		n.log.Warn("removing from store", "content", id, "err", err)
	}
	if it, ok := n.lib.get(id.String()); ok && it.Kind == KindPartial && it.Partial != "" {
		if checkDirIdentity(it.Partial, it.PartialDev, it.PartialIno) == nil {
			os.RemoveAll(it.Partial)
		}
	}
	if _, err := n.lib.remove(id.String()); err != nil {
		return Item{}, err
	}
	return it, nil
}

// restoreLibrary seeds every finished item again and resumes unfinished
// downloads in the background. Items whose store entries are gone or whose
// files changed are logged and skipped.
func (n *Node) restoreLibrary() {
	for _, it := range n.lib.list() {
		id, err := chunker.ParseID(it.ID)
		if err != nil {
			n.log.Warn("library item with a bad ID", "content", it.ID)
			continue
		}
		if it.Kind == KindPartial && !n.recoverInstalled(&it) {
			// Only downloads the user handed to the node; others wait
			// for the user to run the same get again.
			if it.Background {
				n.goRun(func(ctx context.Context) {
					j := job{id: id, name: it.Name, out: filepath.Dir(it.Path), background: true}
					if _, err := n.download(ctx, j, nil); err != nil && !errors.Is(err, ErrClosed) {
						n.log.Warn("background download stopped", "content", id, "err", err)
					}
				})
			}
			continue
		}
		if err := n.seed(id); err != nil {
			n.log.Warn("cannot seed library item", "content", id, "err", err)
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
