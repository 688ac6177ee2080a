package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { addCommand(newIDCmd) }

func newIDCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "id",
		Short:   "show this node's identity",
		Example: "  shoal id",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			node, _, closeNode, err := a.openNode(ctx, false)
			if err != nil {
				return err
			}
			defer closeNode()
			id, err := node.Identity(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(id)
			}
			fmt.Fprintf(a.stdout, "peer id     %s\npublic key  %s\nipv8 mid    %s\nlisten      %s\n", id.PeerID, id.PublicKey, id.Mid, id.Listen)
			return nil
		},
	}
}
