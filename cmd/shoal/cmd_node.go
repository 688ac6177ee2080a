package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/seed"
)

func init() { addCommand(newNodeCmd) }

const registryDefault = "https://registry-1.docker.io"

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func newNodeCmd(a *app) *cobra.Command {
	var (
		listen, api, gw, up, down string
		gwCache                   string
		registry, upstream        string
		boot                      []string
		lan                       bool
	)
	c := &cobra.Command{
		Use:   "node",
		Short: "run the node in the foreground: seed the library, serve the control API",
		Long: `Run the node in the foreground until interrupted: it seeds the library,
resumes background downloads, and serves the control API on a Unix socket
in the data folder (and on a loopback TCP address unless --api off).`,
		Example: `  shoal node
  shoal node --listen 0.0.0.0:7745 --bootstrap 192.0.2.7:7745
  shoal node --upload-limit 10MiB/s
  shoal node --registry 127.0.0.1:5000 --registry-upstream https://registry-1.docker.io`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.nodeConfig()
			if err != nil {
				return err
			}
			if listen != "" {
				cfg.Listen = listen
			}
			if api != "" {
				cfg.API = api
			}
			if gw != "" {
				cfg.Gateway = gw
			}
			if gwCache != "" {
				if cfg.GatewayCache, err = seed.ParseSize(gwCache); err != nil || cfg.GatewayCache <= 0 {
					return usagef("--gateway-cache %q: want a positive size, e.g. 4GiB", gwCache)
				}
			}
			if len(boot) > 0 {
				cfg.Bootstrap = boot
			}
			cfg.LANDiscovery = cfg.LANDiscovery || lan
			if up != "" {
				if cfg.UploadLimit, err = seed.ParseRate(up); err != nil {
					return usagef("--upload-limit: %v", err)
				}
			}
			if down != "" {
				if cfg.DownloadLimit, err = seed.ParseRate(down); err != nil {
					return usagef("--download-limit: %v", err)
				}
			}
			if registry != "" {
				cfg.Registry = registry
			}
			if upstream != "" {
				cfg.RegistryUpstream = upstream
			}
			if cfg.Logger == nil {
				cfg.Logger = nodeLogger(a)
			}
			n, err := seed.New(cfg)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ran := make(chan error, 1)
			go func() { ran <- n.Run(ctx) }() // serves until ctx ends
			st, _ := n.Status(ctx)
			if a.json {
				a.printJSON(st)
			} else {
				proto := "udp"
				if st.TCP {
					proto = "udp and tcp"
				}
				fmt.Fprintf(a.stderr, "shoal node %s listening on %s (%s), control API %s, gateway %s, %d items in the library\n",
					n.PeerID().Short(), st.Listen, proto, orNone(st.API), gatewayURL(st.Gateway), st.Items)
				if ra := n.RegistryAddr(); ra != "" {
					fmt.Fprintf(a.stderr, "shoal node: registry mirror on http://%s (upstream %s)\n", ra, cmpOr(cfg.RegistryUpstream, registryDefault))
				}
			}
			<-ctx.Done()
			a.say("shoal node: stopping (downloads keep their progress)")
			err = <-ran
			return errors.Join(err, n.Close())
		},
	}
	f := c.Flags()
	f.StringVar(&listen, "listen", "", "UDP address for QUIC and IPv8 (default 0.0.0.0:7745)")
	f.StringVar(&gw, "gateway", "", `read-only HTTP gateway address (default 127.0.0.1:7747; "off" disables it; see docs/gateway.md)`)
	f.StringVar(&gwCache, "gateway-cache", "", "disk space the gateway's cache of content read on demand may take, e.g. 500MB (default 4GiB; docs/gateway.md)")
	f.StringVar(&api, "api", "", `control API TCP address on loopback (default 127.0.0.1:7746; "off": Unix socket only)`)
	f.StringArrayVar(&boot, "bootstrap", nil, "peer address to join through, ip:port (repeatable)")
	f.BoolVar(&lan, "lan", false, "announce this node on the local network")
	f.StringVar(&up, "upload-limit", "", "cap upload bytes per second, e.g. 10MiB/s or 50MB (default none)")
	f.StringVar(&down, "download-limit", "", "cap download bytes per second, e.g. 10MiB/s (default none)")
	f.StringVar(&registry, "registry", "", "serve a pull-through OCI registry mirror on this TCP address, e.g. 127.0.0.1:5000 (docs/registry.md; default off)")
	f.StringVar(&upstream, "registry-upstream", "", "the registry mirror's upstream URL (default "+registryDefault+")")
	return c
}

// gatewayURL is the gateway's base URL, or "off".
func gatewayURL(addr string) string {
	if addr == "" {
		return "off"
	}
	return "http://" + addr + "/shoal/"
}
