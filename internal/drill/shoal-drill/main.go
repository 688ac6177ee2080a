// Command shoal-drill runs a shoal node with the impairments and hostile
// behaviours the drills in internal/drill need, which the shipped shoal
// binary does not have: its UDP socket behind internal/netem (delay, jitter,
// loss, reordering) and a lying chunk source (internal/adversary). It is
// built by the drills only, never shipped.
//
//	shoal-drill node --data DIR --listen ADDR --api ADDR [--bootstrap ADDR]...
//	    [--netem delay=20ms,loss=0.01,seed=1] [--corrupt-uploads] [--json]
//
// It prints the node's status like "shoal node --json" and runs until
// SIGINT or SIGTERM. Every other command (publish, get, status, peers)
// goes to the running node through its control API with the real shoal
// binary. SHOAL_DEBUG=1 logs at Debug on stderr, as shoal does.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/shoal-p2p/shoal/internal/adversary"
	"github.com/shoal-p2p/shoal/internal/netem"
	"github.com/shoal-p2p/shoal/seed"
	"github.com/shoal-p2p/shoal/swarm"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "shoal-drill: "+err.Error())
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] != "node" {
		return fmt.Errorf("usage: shoal-drill node [flags]; see the package doc")
	}
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	data := fs.String("data", "", "data folder")
	listen := fs.String("listen", "", "UDP address")
	api := fs.String("api", "", "control API address on loopback")
	var boot multiFlag
	fs.Var(&boot, "bootstrap", "peer address to join through (repeatable)")
	lan := fs.Bool("lan", false, "announce this node on the local network")
	jsonOut := fs.Bool("json", false, "print the status as JSON")
	em := fs.String("netem", "", "egress impairments of the UDP socket, key=value,... (internal/netem.ParseConfig)")
	corrupt := fs.Bool("corrupt-uploads", false, "serve every seeded chunk with flipped bytes (a lying peer)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg := seed.Config{DataDir: *data, Listen: *listen, API: *api, Bootstrap: boot, LANDiscovery: *lan}
	if os.Getenv("SHOAL_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if *em != "" {
		ec, err := netem.ParseConfig(*em)
		if err != nil {
			return err
		}
		cfg.WrapPacketConn = func(pc net.PacketConn) (net.PacketConn, error) { return netem.Wrap(pc, ec) }
		cfg.NoTCP = true // the impairments are on the UDP socket: keep every byte on it
	}
	if *corrupt {
		cfg.WrapSource = func(s swarm.Source) swarm.Source { return adversary.CorruptSource{Source: s} }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := seed.Start(cfg)
	if err != nil {
		return err
	}
	st, _ := n.Status(ctx)
	if *jsonOut {
		b, _ := json.Marshal(st)
		fmt.Println(string(b))
	} else {
		fmt.Fprintf(os.Stderr, "shoal-drill node listening on %s\n", st.Listen)
	}
	<-ctx.Done()
	return n.Close()
}
