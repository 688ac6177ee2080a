package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/seed"
)

func init() { addCommand(newLinkCmd) }

func newLinkCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "link ID...",
		Short:   "print the link of items in the library",
		Example: "  shoal link sh1...",
		Args:    minArgs(1, "an ID (see 'shoal ls')"),
		RunE: a.withNode(func(ctx context.Context, node seed.API, ids []string) error {
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
		}),
	}
}
