package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/seed"
)

func init() { addCommand(newStatusCmd) }

func newStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Short:   "show the node's summary and its downloads in progress",
		Example: "  shoal status\n  shoal status --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			node, remote, closeNode, err := a.openNode(ctx, false)
			if err != nil {
				return err
			}
			defer closeNode()
			st, err := node.Status(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(st)
			}
			state := "running"
			if !remote {
				state = "not running (started for this command)"
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "node\t%s\npeer id\t%s\nlisten\t%s\napi\t%s\ngateway\t%s\npeers\t%d\nitems\t%d\ndownloads\t%d\nuploaded\t%s\ndownloaded\t%s\nuptime\t%s\n",
				state, st.PeerID, st.Listen, orNone(st.API), orNone(st.Gateway), st.Peers, st.Items, st.Active, seed.FormatSize(st.BytesUp), seed.FormatSize(st.BytesDown),
				time.Duration(st.UptimeSeconds)*time.Second)
			if st.ParityRebuilds > 0 { // downloads installed, their parity made after (see 'shoal ls')
				fmt.Fprintf(tw, "rebuilding parity\t%d items\n", st.ParityRebuilds)
			}
			for _, p := range st.Connected { // the path of each open connection: direct, lan or relayed
				fmt.Fprintf(tw, "connected\t%.12s  %s  %s\n", p.PeerID, p.Path, p.Conn)
			}
			for _, d := range st.Downloads {
				pct := 0.0
				if d.Total > 0 {
					pct = 100 * float64(d.Done) / float64(d.Total)
				}
				eta := "unknown"
				if d.ETASeconds > 0 {
					eta = (time.Duration(d.ETASeconds) * time.Second).String()
				}
				bg := ""
				if d.Background {
					bg = " (background)"
				}
				fmt.Fprintf(tw, "  %s\t%s%s: %.0f%%, %s of %s, %s/s from %d peers, eta %s\n", d.Name, d.Stage, bg, pct,
					seed.FormatSize(d.Done), seed.FormatSize(d.Total), seed.FormatSize(d.Rate), d.Peers, eta)
			}
			return tw.Flush()
		},
	}
}
