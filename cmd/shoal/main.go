// Command shoal publishes, downloads and seeds content over a peer-to-peer
// swarm. Run "shoal help" for the commands.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "demo":
		fmt.Println("shoal demo: the swarm is not built yet; run the tests with: go test ./...")
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "shoal: unknown command %q; run 'shoal help'\n", os.Args[1])
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: shoal <command> [arguments]

commands:
  demo    run a local swarm on loopback and show a download
  help    show this help
`)
}
