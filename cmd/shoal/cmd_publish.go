package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/seed"
)

func init() { addCommand(newPublishCmd) }

func newPublishCmd(a *app) *cobra.Command {
	var follow bool
	c := &cobra.Command{
		Use:   "publish PATH...",
		Short: "hash and encode files or folders, seed them, print their links",
		Long: `Hash and encode each file or folder, add it to the library and print its
link on stdout. Files are served in place: edit one and shoal stops serving
it. Symlinks inside a folder are skipped with a warning unless
--follow-symlinks.`,
		Example: `  shoal publish ./release-1.2.iso
  shoal publish --json photos/`,
		Args: minArgs(1, "a file or folder"),
		RunE: func(cmd *cobra.Command, paths []string) error {
			for i, p := range paths {
				abs, err := filepath.Abs(p)
				if err != nil {
					return err
				}
				if _, err := os.Stat(abs); err != nil {
					if errors.Is(err, fs.ErrNotExist) {
						return seed.Errorf(seed.ErrNotFound, "%s does not exist", p)
					}
					return fmt.Errorf("cannot read %s: %w", p, errors.Unwrap(err))
				}
				paths[i] = abs
			}
			ctx := cmd.Context()
			node, remote, closeNode, err := a.openNode(ctx, true)
			if err != nil {
				return err
			}
			defer closeNode()
			results := []seed.Published{}
			for _, p := range paths {
				bar := newBar(a, "hashing "+filepath.Base(p))
				pub, err := node.Publish(ctx, seed.PublishRequest{Path: p, FollowSymlinks: follow}, bar.update)
				bar.end(err)
				if err != nil {
					return err
				}
				results = append(results, pub)
				for _, s := range pub.Skipped {
					a.say("warning: skipped %s: not a regular file (a symlink? publish with --follow-symlinks to follow)", filepath.Join(p, s))
				}
				if !a.json {
					a.say("published %s (%s)", pub.Item.Name, seed.FormatSize(pub.Item.Size))
					fmt.Fprintln(a.stdout, pub.Link)
				}
			}
			if a.json {
				return a.printJSON(results)
			}
			if !remote {
				a.say("note: no node is running, so nobody seeds this yet; start one with 'shoal node' (it seeds the library)")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&follow, "follow-symlinks", false, "publish what symlinks in a folder point to (default: skip them with a warning)")
	return c
}
