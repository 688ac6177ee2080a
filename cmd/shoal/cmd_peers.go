package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { addCommand(newPeersCmd) }

func newPeersCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "peers",
		Short:   "list known peers",
		Example: "  shoal peers",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			node, _, closeNode, err := a.openNode(ctx, false)
			if err != nil {
				return err
			}
			defer closeNode()
			peers, err := node.Peers(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(peers)
			}
			if len(peers) == 0 {
				a.say("no peers known yet")
				return nil
			}
			for _, p := range peers {
				path := p.Path // direct, lan or relayed
				if path == "" {
					path = "-" // known, not connected
				}
				fmt.Fprintf(a.stdout, "%s  %-21s  %s\n", p.PeerID, p.Addr, path)
			}
			return nil
		},
	}
}
