package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() { addCommand(newLsCmd) }

func newLsCmd(a *app) *cobra.Command {
	var links bool
	c := &cobra.Command{
		Use:     "ls",
		Short:   "list the library",
		Example: "  shoal ls\n  shoal ls --links\n  shoal ls --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			node, _, closeNode, err := a.openNode(ctx, false)
			if err != nil {
				return err
			}
			defer closeNode()
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
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.ID, it.Name, humanBytes(it.Size), it.Kind, it.Path)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&links, "links", false, "show each item's link instead of its ID, size and path")
	return c
}
