package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/seed"
)

func init() { addCommand(newPeersCmd) }

func newPeersCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "peers",
		Short:   "list known peers",
		Example: "  shoal peers",
		Args:    noArgs,
		RunE: a.withNode(func(ctx context.Context, node seed.API, _ []string) error {
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
		}),
	}
}
