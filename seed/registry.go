package seed

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/quic-go/quic-go"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/identity"
	"github.com/shoal-p2p/shoal/registry"
)

// startRegistry starts the registry mirror (Config.Registry set): its
// mapping protocol on the overlay and its HTTP server, run by the node.
func (n *Node) startRegistry() error {
	m, err := registry.New(registry.Config{
		Addr:       n.cfg.Registry,
		Upstream:   n.cfg.RegistryUpstream,
		AuthFile:   n.cfg.RegistryAuth,
		Dir:        filepath.Join(n.cfg.DataDir, "registry"),
		Node:       registryNode{n},
		Logger:     n.log,
		Registerer: n.prom,
	})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	n.mirror = m
	n.ov.Handle(registry.Tag, func(ctx context.Context, c *overlay.Conn, s *quic.Stream) {
		m.ServeStream(ctx, c.PeerID(), quicStream{s})
	})
	n.goRun(func(ctx context.Context) {
		if err := m.Run(ctx); err != nil {
			n.log.Warn("registry mirror stopped", "err", err)
		}
	})
	return nil
}

// RegistryAddr returns the registry mirror's address, or "" when it is off.
func (n *Node) RegistryAddr() string {
	if n.mirror == nil {
		return ""
	}
	return n.mirror.Addr()
}

// quicStream adapts a QUIC stream to registry.Stream.
type quicStream struct{ *quic.Stream }

func (s quicStream) Reset() {
	s.CancelRead(0)
	s.CancelWrite(0)
}

// registryNode is what the registry mirror sees of the node.
type registryNode struct{ n *Node }

var _ registry.Node = registryNode{}

func (r registryNode) Self() identity.PeerID { return r.n.PeerID() }

func (r registryNode) Provide(ctx context.Context, key [32]byte) error {
	r.n.metrics.DHTProvides.Add(1)
	return r.n.dht.Provide(ctx, key)
}

func (r registryNode) StopProviding(key [32]byte) { r.n.dht.StopProviding(key) }

func (r registryNode) FindProviders(ctx context.Context, key [32]byte, found func(registry.Peer)) {
	r.n.metrics.DHTLookups.Add(1)
	for p := range r.n.dht.FindProviders(ctx, key) {
		found(registry.Peer{ID: p.ID, Addrs: p.Addrs})
	}
}

func (r registryNode) OpenStream(ctx context.Context, peer identity.PeerID, addr netip.AddrPort) (registry.Stream, error) {
	s, err := r.n.ov.OpenStream(ctx, peer, addr, registry.Tag)
	if err != nil {
		return nil, err
	}
	return quicStream{s}, nil
}

func (r registryNode) Publish(ctx context.Context, path string) ([32]byte, error) {
	p, err := r.n.Publish(ctx, PublishRequest{Path: path}, nil)
	if err != nil {
		return [32]byte{}, err
	}
	id, err := chunker.ParseID(p.Item.ID)
	return id, err
}

func (r registryNode) Fetch(ctx context.Context, id [32]byte, peers []registry.Peer, dir string, progress func(done, size int64)) (registry.Fetched, error) {
	cid := chunker.ContentID(id)
	if it, ok := r.n.lib.get(cid.String()); ok && it.Kind != KindPartial {
		st, err := os.Stat(it.Path)
		if err != nil {
			return registry.Fetched{}, err
		}
		return registry.Fetched{Path: it.Path, Size: st.Size()}, nil
	}
	var hints []hint
	for _, p := range peers {
		for _, a := range p.Addrs {
			hints = append(hints, hint{id: p.ID, addr: a})
		}
	}
	it, err := r.n.download(ctx, job{id: cid, name: "blob", out: dir, hints: hints}, func(p Progress) { progress(p.Done, p.Total) })
	if err != nil {
		return registry.Fetched{}, err
	}
	st, err := os.Lstat(it.Path)
	if err != nil {
		return registry.Fetched{}, err
	}
	if !st.Mode().IsRegular() {
		return registry.Fetched{Path: it.Path, Size: -1, New: true}, nil
	}
	return registry.Fetched{Path: it.Path, Size: st.Size(), New: true}, nil
}

func (r registryNode) Forget(id [32]byte) {
	if _, err := r.n.Remove(context.Background(), chunker.ContentID(id).String()); err != nil {
		r.n.log.Debug("forgetting content", "content", chunker.ContentID(id), "err", err)
	}
}

// Mirror returns the node's registry mirror, or nil when it is off.
func (n *Node) Mirror() *registry.Mirror { return n.mirror }
