package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/seed"
)

// app is what every command shares: the global flags and the output.
type app struct {
	dataDir string
	config  string
	json    bool

	stdout, stderr io.Writer
}

// commands registers the command constructors; each cmd_*.go adds its own
// in an init func, so a new command is one new file.
var commands []func(a *app) *cobra.Command

func addCommand(f func(a *app) *cobra.Command) { commands = append(commands, f) }

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "shoal",
		Short: "move big files to many machines over a peer-to-peer swarm",
		Long: `shoal moves big files to many machines: publish a file or folder, share the
link, and everyone with it downloads from every peer at once.

Commands talk to the node running on the data folder (shoal node); when none
runs they start one inside the command for as long as it takes.`,
		Version:       version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q; run 'shoal help'", args[0])
			}
			return cmd.Help()
		},
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%v; run 'shoal %s --help'", err, c.Name())
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.dataDir, "data", "", "data folder (default $SHOAL_DATA_DIR, $XDG_DATA_HOME/shoal or ~/.local/share/shoal)")
	pf.StringVar(&a.config, "config", "", "config file; it must exist when named (default $SHOAL_CONFIG or $XDG_CONFIG_HOME/shoal/config.json, optional)")
	pf.BoolVar(&a.json, "json", false, "print JSON (also for errors) for scripts; see docs/cli.md")
	root.SetVersionTemplate("shoal {{.Version}}\n")
	root.AddGroup(&cobra.Group{ID: "main", Title: "Commands:"})
	for _, f := range commands {
		c := f(a)
		c.GroupID = "main"
		root.AddCommand(c)
	}
	root.SetHelpCommandGroupID("main")
	root.SetCompletionCommandGroupID("main")
	root.SetUsageTemplate(root.UsageTemplate() + `
Exit codes: 0 ok, 1 error, 2 bad usage or bad link, 3 not found,
4 no peer served the content in time, 5 disk full.
`)
	return root
}

// exactArgs and friends report a usage error (exit 2) with a pointer to
// the command's help.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments; run 'shoal %s --help'", cmd.Name(), cmd.Name())
	}
	return nil
}

func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s needs %s; run 'shoal %s --help'", cmd.Name(), what, cmd.Name())
		}
		return nil
	}
}

// printJSON writes v as indented JSON on stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// say writes a line for people on stderr (nothing with --json).
func (a *app) say(format string, args ...any) {
	if !a.json {
		fmt.Fprintf(a.stderr, format+"\n", args...)
	}
}

// nodeConfig builds a node's config from the config file and the global
// flags. A config file named with --config must exist.
func (a *app) nodeConfig() (seed.Config, error) {
	cfg := seed.Config{DataDir: a.dataDir}
	path, required := a.config, a.config != ""
	if path == "" {
		var err error
		if path, err = seed.DefaultConfigFile(); err != nil {
			return cfg, err
		}
		required = os.Getenv(seed.EnvConfig) != ""
	}
	fc, err := seed.LoadConfigFile(path, required)
	if err != nil {
		return cfg, err
	}
	fc.Apply(&cfg)
	if os.Getenv("SHOAL_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg, nil
}

// openNode returns the node running on the data folder (through its Unix
// socket), or starts one in this process (remote is then false). Either is
// a seed.API, so the command behaves the same. A command whose work must
// outlive another command (long: get, publish) does not use the node
// another command started for itself: it waits for that one to end. Call
// the returned close when done.
func (a *app) openNode(ctx context.Context, long bool) (api seed.API, remote bool, closeFn func(), err error) {
	cfg, err := a.nodeConfig()
	if err != nil {
		return nil, false, nil, err
	}
	if err := cfg.FillDefaults(); err != nil {
		return nil, false, nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		api, remote, closeFn, err = a.tryNode(ctx, cfg, long)
		if !errors.Is(err, seed.ErrDataDirBusy) || time.Now().After(deadline) {
			return api, remote, closeFn, err
		}
		// Another command's node holds the folder for a moment.
		select {
		case <-ctx.Done():
			return nil, false, nil, seed.Errorf(seed.ErrInterrupted, "interrupted")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// withNode makes the RunE of a command that needs the node for a moment:
// it opens the node (see openNode), runs run, and closes it.
func (a *app) withNode(run func(ctx context.Context, node seed.API, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		node, _, closeNode, err := a.openNode(ctx, false)
		if err != nil {
			return err
		}
		defer closeNode()
		return run(ctx, node, args)
	}
}

func (a *app) tryNode(ctx context.Context, cfg seed.Config, long bool) (seed.API, bool, func(), error) {
	c, err := seed.Dial(ctx, cfg.DataDir)
	if err == nil {
		if long && c.Transient() {
			return nil, false, nil, seed.Errorf(seed.ErrDataDirBusy, "the data folder %s is in use by another shoal command; wait for it to end, or start 'shoal node' so commands share it", cfg.DataDir)
		}
		return c, true, func() {}, nil
	}
	if !errors.Is(err, seed.ErrNoNode) {
		return nil, false, nil, err
	}
	cfg.API = "off"     // no TCP port for a node that lives one command
	cfg.Gateway = "off" // nor a gateway
	cfg.Transient = true
	if portBusy(cfg.Listen) {
		// The usual port is taken (another node on another folder, say):
		// any port on the configured address will do for one command.
		ap := netip.MustParseAddrPort(cfg.Listen)
		cfg.Listen = netip.AddrPortFrom(ap.Addr(), 0).String()
	}
	n, err := seed.Start(cfg)
	if err != nil {
		return nil, false, nil, err
	}
	return n, false, func() { n.Close() }, nil
}

// portBusy reports whether the UDP address cannot be bound now.
func portBusy(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Port() == 0 {
		return false
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return true
	}
	c.Close()
	return false
}

func orNone(s string) string {
	if s == "" {
		return "off"
	}
	return s
}
