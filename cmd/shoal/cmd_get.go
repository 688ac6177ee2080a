package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/seed"
)

func init() { addCommand(newGetCmd) }

func newGetCmd(a *app) *cobra.Command {
	var (
		out        string
		wait       time.Duration
		background bool
		only       []string
	)
	c := &cobra.Command{
		Use:   "get LINK...",
		Short: "download links or IDs (resumes when run again)",
		Long: `Download each link (shoal:sh1...?name=...&peer=...) or bare ID (sh1...) into
the folder -o. Until a file is complete and verified it lives in a hidden
folder .shoal-part.<ID> beside it and is then renamed into place: nothing
appears at the printed path unless it is whole. Interrupted, it keeps what
it verified; the same command resumes (with another -o it moves the partial
download there, or says where it is). A download that verified nothing
leaves nothing behind. Content already in the library is copied to -o.
The printed path (stdout) holds the verified content.`,
		Example: `  shoal get 'shoal:sh1...?name=x&peer=...' -o ~/Downloads
  shoal get sh1... --wait 5m
  shoal get --background sh1...    # the running node keeps trying; see 'shoal status'
  shoal get sh1... --only 'cd1/*' --only '*.cue'   # only matching files of a folder`,
		Args: minArgs(1, "a link or an ID"),
		RunE: func(cmd *cobra.Command, links []string) error {
			dir, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			if len(only) > 0 {
				return getOnly(a, cmd, links, dir, only, background)
			}
			ctx := cmd.Context()
			node, remote, closeNode, err := a.openNode(ctx, true)
			if err != nil {
				return err
			}
			defer closeNode()
			if background && !remote {
				return seed.Errorf(seed.ErrNoNode, "--background hands the download to a running node; start one with 'shoal node'")
			}
			var got []seed.Item
			for _, link := range links {
				bar := newBar(a, "fetching")
				it, err := node.Get(ctx, seed.GetRequest{Link: link, Out: dir, Wait: seed.Duration(wait), Background: background}, bar.update)
				bar.end(err)
				if err != nil {
					return err
				}
				if !background {
					if _, err := os.Stat(it.Path); err != nil {
						return fmt.Errorf("the node put %s at %s, which this command cannot see (does the node run in another mount namespace, such as systemd's PrivateTmp?)", it.Name, it.Path)
					}
				}
				got = append(got, it)
				switch {
				case a.json:
				case background:
					a.say("downloading %s in the background into %s; see 'shoal status'", it.Name, filepath.Dir(it.Path))
				default:
					a.say("got %s (%s), verified", it.Name, seed.FormatSize(it.Size))
					fmt.Fprintln(a.stdout, it.Path)
				}
			}
			return endGet(a, got, remote)
		},
	}
	f := c.Flags()
	f.StringVarP(&out, "out", "o", ".", "folder to download into (created if missing)")
	f.DurationVar(&wait, "wait", time.Minute, "give up when no peer has served anything for this long (0: wait forever)")
	f.StringArrayVar(&only, "only", nil, "fetch only the files of a folder matching this glob (repeatable; see 'shoal ls LINK'); only their chunks are fetched")
	f.BoolVar(&background, "background", false, "hand the download to the running node, which keeps trying across restarts (see 'shoal status')")
	return c
}

// getOnly fetches only the files of each link's folder that match the
// globs (get --only).
func getOnly(a *app, cmd *cobra.Command, links []string, dir string, only []string, background bool) error {
	if background {
		return usagef("--only and --background do not go together; run 'shoal get --help'")
	}
	ctx := cmd.Context()
	node, remote, closeNode, err := a.openNode(ctx, true)
	if err != nil {
		return err
	}
	defer closeNode()
	var got []seed.Selected
	for _, link := range links {
		bar := newBar(a, "fetching")
		sel, err := node.GetOnly(ctx, seed.GetOnlyRequest{Link: link, Out: dir, Only: only}, bar.update)
		bar.end(err)
		if err != nil {
			return err
		}
		got = append(got, sel)
		if !a.json {
			a.say("got %d files (%s), verified", len(sel.Files), seed.FormatSize(sel.Bytes))
			for _, f := range sel.Files {
				fmt.Fprintln(a.stdout, f)
			}
		}
	}
	return endGet(a, got, remote)
}

// endGet ends get: what it fetched as JSON (one object for one link) with
// --json, else the note that nothing seeds it when no node runs.
func endGet[T any](a *app, got []T, remote bool) error {
	if a.json {
		if len(got) == 1 {
			return a.printJSON(got[0])
		}
		return a.printJSON(got)
	}
	if !remote {
		a.say("note: no node is running, so this is not seeded; start one with 'shoal node' to give back")
	}
	return nil
}
