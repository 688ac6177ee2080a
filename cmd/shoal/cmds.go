package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoal-p2p/shoal/seed"
)

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func noArgs(name string, args []string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fail(exitUsage, "%s takes no arguments; run 'shoal %s --help'", name, name)
	}
	return nil
}

func runNode(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	listen := fs.String("listen", "", "UDP address for QUIC and IPv8 (default 0.0.0.0:7745)")
	api := fs.String("api", "", `control API address on loopback (default 127.0.0.1:7746, "off" for none)`)
	var boot multiFlag
	fs.Var(&boot, "bootstrap", "peer address to join through (repeatable)")
	lan := fs.Bool("lan", false, "announce this node on the local network")
	reg := fs.String("registry", "", "serve a pull-through OCI registry mirror on this TCP address, e.g. 127.0.0.1:5000 (docs/registry.md)")
	regUp := fs.String("registry-upstream", "", "the registry mirror's upstream URL (default https://registry-1.docker.io)")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fail(exitUsage, "node takes no arguments; run 'shoal node --help'")
	}
	cfg, err := nodeConfig(g)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *api != "" {
		cfg.API = *api
	}
	if len(boot) > 0 {
		cfg.Bootstrap = boot
	}
	cfg.LANDiscovery = cfg.LANDiscovery || *lan
	if *reg != "" {
		cfg.Registry = *reg
	}
	if *regUp != "" {
		cfg.RegistryUpstream = *regUp
	}
	n, err := seed.Start(cfg)
	if err != nil {
		return err
	}
	st := n.Status()
	if g.json {
		printJSON(st)
	} else {
		fmt.Fprintf(os.Stderr, "shoal node %s listening on %s (udp), control API %s, %d items in the library\n",
			n.PeerID().Short(), st.Listen, orNone(st.API), st.Items)
		if a := n.RegistryAddr(); a != "" {
			fmt.Fprintf(os.Stderr, "shoal node: registry mirror on http://%s (upstream %s)\n", a, orDefault(cfg.RegistryUpstream, "https://registry-1.docker.io"))
		}
	}
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "shoal node: stopping (downloads keep their progress)")
	return n.Close()
}

func orNone(s string) string {
	if s == "" {
		return "off"
	}
	return s
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runPublish(ctx context.Context, g *globals, args []string) error {
	flags := flag.NewFlagSet("publish", flag.ContinueOnError)
	paths, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return fail(exitUsage, "publish needs a file or folder; run 'shoal publish --help'")
	}
	for i, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fail(exitNotFound, "%s does not exist", p)
			}
			return fmt.Errorf("cannot read %s: %w", p, errors.Unwrap(err))
		}
		paths[i] = abs
	}
	node, remote, closeNode, err := openNode(ctx, g)
	if err != nil {
		return err
	}
	defer closeNode()
	var results []seed.Published
	for _, p := range paths {
		bar := newBar(!g.json, "hashing "+filepath.Base(p))
		pub, err := node.Publish(ctx, p, bar.update)
		bar.finish()
		if err != nil {
			return err
		}
		results = append(results, pub)
		if !g.json {
			fmt.Fprintf(os.Stderr, "published %s (%s)\n", pub.Item.Name, humanBytes(pub.Item.Size))
			fmt.Println(pub.Link)
		}
	}
	if g.json {
		return printJSON(results)
	}
	if !remote {
		fmt.Fprintln(os.Stderr, "note: no node is running, so nobody seeds this yet; start one with 'shoal node' (it seeds the library)")
	}
	return nil
}

func runGet(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	out := fs.String("o", ".", "folder to download into")
	wait := fs.Duration("wait", time.Minute, "give up when no peer has served anything for this long (0: wait forever)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fail(exitUsage, "get needs one link; run 'shoal get --help'")
	}
	dir, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", *out, errors.Unwrap(err))
	}
	node, remote, closeNode, err := openNode(ctx, g)
	if err != nil {
		return err
	}
	defer closeNode()

	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	bar := newBar(!g.json, "fetching")
	dog := newWatchdog(*wait, cancel)
	defer dog.stop()
	it, err := node.Get(gctx, pos[0], dir, func(p seed.Progress) {
		dog.progress(p)
		bar.update(p)
	})
	bar.finish()
	if err != nil {
		if c := context.Cause(gctx); errors.Is(c, errStalled) {
			return fail(exitNoPeers, "no peer served %s for %s; check the link, or that a node seeding it is running (progress is kept: run the same command again to resume)", shortLink(pos[0]), *wait)
		}
		return err
	}
	if g.json {
		return printJSON(it)
	}
	fmt.Fprintf(os.Stderr, "got %s (%s), verified\n", it.Name, humanBytes(it.Size))
	fmt.Println(it.Path)
	if !remote {
		fmt.Fprintln(os.Stderr, "note: no node is running, so this is not seeded; start one with 'shoal node' to give back")
	}
	return nil
}

func shortLink(l string) string {
	if i := strings.IndexByte(l, '?'); i > 0 {
		return l[:i]
	}
	return l
}

var errStalled = errors.New("no progress")

// watchdog cancels a download that has had no peer and no progress for a
// while.
type watchdog struct {
	limit  time.Duration
	cancel context.CancelCauseFunc
	timer  *time.Timer
	done   int64
}

func newWatchdog(limit time.Duration, cancel context.CancelCauseFunc) *watchdog {
	w := &watchdog{limit: limit, cancel: cancel}
	if limit > 0 {
		w.timer = time.AfterFunc(limit, func() { cancel(errStalled) })
	}
	return w
}

// progress rearms the watchdog when bytes arrived. Called from one
// goroutine at a time.
func (w *watchdog) progress(p seed.Progress) {
	if w.timer != nil && p.Done > w.done {
		w.done = p.Done
		w.timer.Reset(w.limit)
	}
}

func (w *watchdog) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

func runStatus(ctx context.Context, g *globals, args []string) error {
	if err := noArgs("status", args); err != nil {
		return err
	}
	node, remote, closeNode, err := openNode(ctx, g)
	if err != nil {
		return err
	}
	defer closeNode()
	st, err := node.Status(ctx)
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(st)
	}
	state := "running"
	if !remote {
		state = "not running (started for this command)"
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "node\t%s\npeer id\t%s\nlisten\t%s\napi\t%s\npeers\t%d\nitems\t%d\ndownloads\t%d\nuploaded\t%s\ndownloaded\t%s\nuptime\t%s\n",
		state, st.PeerID, st.Listen, orNone(st.API), st.Peers, st.Items, st.Active, humanBytes(st.BytesUp), humanBytes(st.BytesDown), st.Uptime)
	for _, d := range st.Downloads {
		pct := 0.0
		if d.Total > 0 {
			pct = 100 * float64(d.Done) / float64(d.Total)
		}
		eta := d.ETA
		if eta == "" {
			eta = "unknown"
		}
		fmt.Fprintf(tw, "  %s\t%.0f%% of %s, %s/s from %d peers, eta %s\n", d.Name, pct, humanBytes(d.Total), humanBytes(d.Rate), d.Peers, eta)
	}
	return tw.Flush()
}

func runLs(ctx context.Context, g *globals, args []string) error {
	if err := noArgs("ls", args); err != nil {
		return err
	}
	node, _, closeNode, err := openNode(ctx, g)
	if err != nil {
		return err
	}
	defer closeNode()
	items, err := node.Items(ctx)
	if err != nil {
		return err
	}
	if g.json {
		if items == nil {
			items = []seed.Item{}
		}
		return printJSON(items)
	}
	if len(items) == 0 {
		fmt.Fprintln(os.Stderr, "the library is empty; add something with 'shoal publish PATH' or 'shoal get LINK'")
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSIZE\tKIND\tPATH")
	for _, it := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.ID, it.Name, humanBytes(it.Size), it.Kind, it.Path)
	}
	return tw.Flush()
}

func runRm(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("rm", flag.ContinueOnError)
	ids, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fail(exitUsage, "rm needs an ID (see 'shoal ls')")
	}
	node, _, closeNode, err := openNode(ctx, g)
	if err != nil {
		return err
	}
	defer closeNode()
	for _, id := range ids {
		if err := node.Remove(ctx, id); err != nil {
			if errors.Is(err, seed.ErrNotInLibrary) {
				return fail(exitNotFound, "%s is not in the library (see 'shoal ls')", id)
			}
			return err
		}
		if !g.json {
			fmt.Fprintf(os.Stderr, "removed %s (files on disk are kept)\n", id)
		}
	}
	return nil
}

func runID(ctx context.Context, g *globals, args []string) error {
	if err := noArgs("id", args); err != nil {
		return err
	}
	node, _, closeNode, err := openNode(ctx, g)
	if err != nil {
		return err
	}
	defer closeNode()
	id, err := node.Identity(ctx)
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(id)
	}
	fmt.Printf("peer id     %s\npublic key  %s\nipv8 mid    %s\nlisten      %s\n", id.PeerID, id.PublicKey, id.Mid, id.Listen)
	return nil
}

func runPeers(ctx context.Context, g *globals, args []string) error {
	if err := noArgs("peers", args); err != nil {
		return err
	}
	node, _, closeNode, err := openNode(ctx, g)
	if err != nil {
		return err
	}
	defer closeNode()
	peers, err := node.Peers(ctx)
	if err != nil {
		return err
	}
	if g.json {
		if peers == nil {
			peers = []seed.PeerInfo{}
		}
		return printJSON(peers)
	}
	if len(peers) == 0 {
		fmt.Fprintln(os.Stderr, "no peers known yet")
		return nil
	}
	for _, p := range peers {
		path := p.Path // direct, lan or relayed
		if path == "" {
			path = "-" // known, not connected
		}
		fmt.Printf("%s  %-21s  %s\n", p.PeerID, p.Addr, path)
	}
	return nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
