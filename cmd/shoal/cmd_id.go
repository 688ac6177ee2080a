package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/seed"
)

func init() { addCommand(newIDCmd) }

func newIDCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "id",
		Short:   "show this node's identity",
		Example: "  shoal id",
		Args:    noArgs,
		RunE: a.withNode(func(ctx context.Context, node seed.API, _ []string) error {
			id, err := node.Identity(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(id)
			}
			fmt.Fprintf(a.stdout, "peer id     %s\npublic key  %s\nipv8 mid    %s\nlisten      %s\n", id.PeerID, id.PublicKey, id.Mid, id.Listen)
			return nil
		}),
	}
}
