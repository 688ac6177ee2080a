package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { addCommand(newLinkCmd) }

func newLinkCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "link ID...",
		Short:   "print the link of items in the library",
		Example: "  shoal link sh1...",
		Args:    minArgs(1, "an ID (see 'shoal ls')"),
		RunE: func(cmd *cobra.Command, ids []string) error {
			ctx := cmd.Context()
			node, _, closeNode, err := a.openNode(ctx, false)
			if err != nil {
				return err
			}
			defer closeNode()
			type linkOut struct {
				ID   string `json:"id"`
				Link string `json:"link"`
			}
			outs := []linkOut{}
			for _, id := range ids {
				l, err := node.Link(ctx, id)
				if err != nil {
					return err
				}
				outs = append(outs, linkOut{id, l})
				if !a.json {
					fmt.Fprintln(a.stdout, l)
				}
			}
			if a.json {
				return a.printJSON(outs)
			}
			return nil
		},
	}
}
