package main

import (
	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/seed"
)

func init() {
	addCommand(func(a *app) *cobra.Command {
		return controlCmd(a, "pause", "pause a download in progress (requests in flight finish)", "  shoal pause sh1...")
	})
	addCommand(func(a *app) *cobra.Command {
		return controlCmd(a, "resume", "resume a paused download", "  shoal resume sh1...")
	})
	addCommand(func(a *app) *cobra.Command {
		return controlCmd(a, "cancel", "stop a download and forget it (its partial folder too)", "  shoal cancel sh1...")
	})
	addCommand(newLimitCmd)
}

// controlCmd makes pause, resume and cancel: one download ID (or link) of
// the running node.
func controlCmd(a *app, action, short, example string) *cobra.Command {
	return &cobra.Command{
		Use:     action + " ID",
		Short:   short,
		Long:    short + ".\nIt acts on a download in progress on the running node: a get ('shoal status'\nlists them), or one the gateway or 'shoal cat' started.",
		Example: example,
		Args:    exactOne("a download's ID or link"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return control(a, cmd, args[0], seed.ControlRequest{Action: action})
		},
	}
}

func newLimitCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "limit ID RATE",
		Short: "cap one download's rate (0: no cap of its own)",
		Long: `Cap one download in progress at RATE bytes per second, on top of the node's
download_limit; 0 removes its own cap. RATE takes units: 5MB/s, 10MiB/s, 800k.`,
		Example: "  shoal limit sh1... 5MB/s\n  shoal limit sh1... 0",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("limit needs a download's ID and a rate; run 'shoal limit --help'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			rate, err := seed.ParseRate(args[1])
			if err != nil {
				return usagef("rate %q: %v", args[1], err)
			}
			return control(a, cmd, args[0], seed.ControlRequest{Action: "rate", Rate: rate})
		},
	}
}

func exactOne(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usagef("%s needs %s; run 'shoal %s --help'", cmd.Name(), what, cmd.Name())
		}
		return nil
	}
}

// control sends req for the download named by idOrLink.
func control(a *app, cmd *cobra.Command, idOrLink string, req seed.ControlRequest) error {
	l, err := seed.ParseLink(idOrLink)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	node, remote, closeNode, err := a.openNode(ctx, false)
	if err != nil {
		return err
	}
	defer closeNode()
	if !remote {
		return seed.Errorf(seed.ErrNoNode, "no node is running on this data folder, so no download is in progress; start one with 'shoal node'")
	}
	if err := node.Control(ctx, l.ID.String(), req); err != nil {
		return err
	}
	if a.json {
		return a.printJSON(map[string]string{"id": l.ID.String(), "action": req.Action})
	}
	a.say("%s: %s", req.Action, l.ID)
	return nil
}
