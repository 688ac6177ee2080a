package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/seed"
)

func init() { addCommand(newLsCmd) }

func newLsCmd(a *app) *cobra.Command {
	var links bool
	c := &cobra.Command{
		Use:   "ls [LINK]",
		Short: "list the library, or the files of a link",
		Long: `Without an argument, list the library. With a link or ID, list the files it
holds (path, size, mode), fetching only its manifest: nothing is downloaded.`,
		Example: "  shoal ls\n  shoal ls --links\n  shoal ls --json\n  shoal ls 'shoal:sh1...?name=album&peer=...'",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("ls takes at most one link; run 'shoal ls --help'")
			}
			return nil
		},
		RunE: a.withNode(func(ctx context.Context, node seed.API, args []string) error {
			if len(args) == 1 {
				return listLink(ctx, a, node, args[0])
			}
			items, err := node.Items(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(items)
			}
			if len(items) == 0 {
				a.say("the library is empty; add something with 'shoal publish PATH' or 'shoal get LINK'")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			if links {
				fmt.Fprintln(tw, "NAME\tLINK")
				for _, it := range items {
					fmt.Fprintf(tw, "%s\t%s\n", it.Name, it.Link)
				}
				return tw.Flush()
			}
			fmt.Fprintln(tw, "ID\tNAME\tSIZE\tKIND\tPATH")
			for _, it := range items {
				kind := string(it.Kind)
				switch {
				case it.Kind == seed.KindCache:
					kind = "cache (" + seed.FormatSize(it.Cached) + " held)"
				case it.Parity == seed.ParityRebuilding:
					kind += " (rebuilding parity)"
				case it.Parity == seed.ParityPending:
					kind += " (parity rebuilt when a node runs)"
				case it.Parity == seed.ParityFailed:
					kind += " (parity not rebuilt: see the node's log)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.ID, it.Name, seed.FormatSize(it.Size), kind, it.Path)
			}
			return tw.Flush()
		}),
	}
	c.Flags().BoolVar(&links, "links", false, "show each item's link instead of its ID, size and path")
	return c
}

// listLink prints the files of a link (its manifest only is fetched).
func listLink(ctx context.Context, a *app, node seed.API, link string) error {
	l, err := node.List(ctx, link)
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(l)
	}
	kind := "file"
	if l.Folder {
		kind = "folder"
	}
	a.say("%s: %s, %d files, %s", l.Name, kind, len(l.Files), seed.FormatSize(l.Size))
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODE\tSIZE\tPATH")
	for _, f := range l.Files {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Mode, seed.FormatSize(f.Size), f.Path)
	}
	return tw.Flush()
}
