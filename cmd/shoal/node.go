package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/shoal-p2p/shoal/seed"
)

// nodeAPI is what commands need of a node: the running one, through its
// control API (*seed.Client), or one started inside the command (local).
type nodeAPI interface {
	Status(ctx context.Context) (seed.Status, error)
	Items(ctx context.Context) ([]seed.Item, error)
	Identity(ctx context.Context) (seed.IDInfo, error)
	Peers(ctx context.Context) ([]seed.PeerInfo, error)
	Remove(ctx context.Context, id string) error
	Publish(ctx context.Context, path string, progress func(seed.Progress)) (seed.Published, error)
	Get(ctx context.Context, link, out string, progress func(seed.Progress)) (seed.Item, error)
}

var _ nodeAPI = (*seed.Client)(nil)

// local adapts an in-process node to nodeAPI.
type local struct{ n *seed.Node }

func (l local) Status(context.Context) (seed.Status, error)    { return l.n.Status(), nil }
func (l local) Items(context.Context) ([]seed.Item, error)     { return l.n.Items(), nil }
func (l local) Identity(context.Context) (seed.IDInfo, error)  { return l.n.Identity(), nil }
func (l local) Peers(context.Context) ([]seed.PeerInfo, error) { return l.n.Peers(), nil }
func (l local) Remove(_ context.Context, id string) error      { return l.n.Remove(id) }
func (l local) Publish(ctx context.Context, path string, p func(seed.Progress)) (seed.Published, error) {
	return l.n.Publish(ctx, path, p)
}
func (l local) Get(ctx context.Context, link, out string, p func(seed.Progress)) (seed.Item, error) {
	return l.n.Get(ctx, link, out, p)
}

// nodeConfig builds a node's config from the config file and the global
// flags.
func nodeConfig(g *globals) (seed.Config, error) {
	cfg := seed.Config{DataDir: g.dataDir}
	path := g.config
	if path == "" {
		var err error
		if path, err = seed.DefaultConfigFile(); err != nil {
			return cfg, err
		}
	}
	fc, err := seed.LoadConfigFile(path)
	if err != nil {
		return cfg, err
	}
	fc.Apply(&cfg)
	if os.Getenv("SHOAL_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg, nil
}

// openNode returns the node running on the data folder, or starts one in
// this process (remote is then false). Call the returned close when done.
func openNode(ctx context.Context, g *globals) (api nodeAPI, remote bool, closeFn func(), err error) {
	cfg, err := nodeConfig(g)
	if err != nil {
		return nil, false, nil, err
	}
	if err := cfg.FillDefaults(); err != nil {
		return nil, false, nil, err
	}
	c, err := seed.Dial(ctx, cfg.DataDir)
	if err == nil {
		return c, true, func() {}, nil
	}
	if !errors.Is(err, seed.ErrNoNode) {
		return nil, false, nil, err
	}
	cfg.API = "off"
	n, err := seed.Start(cfg)
	if err != nil && !errors.Is(err, seed.ErrDataDirBusy) {
		// The usual port may be taken by another program: any port will do
		// for a node that lives as long as one command.
		cfg.Listen = "0.0.0.0:0"
		n, err = seed.Start(cfg)
	}
	if err != nil {
		if errors.Is(err, seed.ErrDataDirBusy) {
			return nil, false, nil, fmt.Errorf("%v (its control API does not answer; is it starting?)", err)
		}
		return nil, false, nil, err
	}
	return local{n}, false, func() { n.Close() }, nil
}
