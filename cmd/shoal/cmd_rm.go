package main

import (
	"context"
	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/seed"
)

func init() { addCommand(newRmCmd) }

func newRmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rm ID...",
		Short: "remove items from the library (your files stay)",
		Long: `Remove items (by ID or link) from the library: stop seeding, announcing
and downloading them. Published sources and finished downloads stay on
disk; an unfinished download's hidden .shoal-part folder is deleted. An
item of the gateway cache (kind "cache" in 'shoal ls') is deleted with its
cached chunks.`,
		Example: "  shoal rm sh1...\n  shoal rm 'shoal:sh1...?name=x'",
		Args:    minArgs(1, "an ID (see 'shoal ls')"),
		RunE: a.withNode(func(ctx context.Context, node seed.API, ids []string) error {
			removed := []seed.Item{}
			for _, id := range ids {
				it, err := node.Remove(ctx, id)
				if err != nil {
					return err
				}
				removed = append(removed, it)
				if it.Kind == seed.KindCache {
					a.say("removed %s %s from the gateway cache (its %s of cached chunks deleted)", it.ID, it.Name, seed.FormatSize(it.Cached))
				} else {
					a.say("removed %s %s (files on disk are kept)", it.ID, it.Name)
				}
			}
			if a.json {
				return a.printJSON(removed)
			}
			return nil
		}),
	}
}
