// Command shoal publishes, downloads and seeds content over a peer-to-peer
// swarm. Run "shoal help" for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/shoal-p2p/shoal/seed"
)

// Exit codes, documented in "shoal help".
const (
	exitOK       = 0
	exitError    = 1 // anything else
	exitUsage    = 2 // bad command line or bad link
	exitNotFound = 3 // a missing path or an ID not in the library
	exitNoPeers  = 4 // no peer served the content in time
	exitDiskFull = 5 // the disk is full
)

// cliError carries an exit code with a one-line message.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &cliError{code: code, msg: fmt.Sprintf(format, args...)}
}

type command struct {
	name, args, summary string
	examples            []string
	run                 func(ctx context.Context, g *globals, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"demo", "[-peers N] [-size BYTES]", "run a local swarm on loopback and watch it work", []string{"shoal demo", "shoal demo -peers 8 -size 256MiB"}, runDemo},
		{"node", "[-listen ADDR] [-api ADDR] [-bootstrap ADDR]... [-registry ADDR [-registry-upstream URL]]", "run the node in the foreground: seed the library, serve the control API (and a registry mirror)", []string{"shoal node", "shoal node -listen 0.0.0.0:7745 -bootstrap 192.0.2.7:7745", "shoal node -registry 127.0.0.1:5000 -registry-upstream https://registry-1.docker.io"}, runNode},
		{"publish", "PATH...", "hash and encode files or folders, seed them, print their links", []string{"shoal publish ./release-1.2.iso", "shoal publish --json photos/"}, runPublish},
		{"get", "LINK [-o DIR] [-wait DURATION]", "download a link (resumes when run again)", []string{"shoal get 'shoal:sh1...?name=x&peer=...' -o ~/Downloads"}, runGet},
		{"status", "", "show the node's summary", []string{"shoal status"}, runStatus},
		{"ls", "", "list the library", []string{"shoal ls", "shoal ls --json"}, runLs},
		{"rm", "ID...", "remove items from the library (your files stay)", []string{"shoal rm sh1..."}, runRm},
		{"id", "", "show this node's identity", []string{"shoal id"}, runID},
		{"peers", "", "list known peers", []string{"shoal peers"}, runPeers},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	g, rest, err := parseGlobals(args)
	if err == nil && len(rest) == 0 {
		usage()
		return exitUsage
	}
	if err == nil {
		name := rest[0]
		switch name {
		case "help", "-h", "--help", "-help":
			usage()
			return exitOK
		}
		cmd := lookup(name)
		if cmd == nil {
			err = fail(exitUsage, "unknown command %q; run 'shoal help'", name)
		} else if wantsHelp(rest[1:]) {
			commandUsage(cmd)
			return exitOK
		} else {
			err = cmd.run(ctx, g, rest[1:])
		}
	}
	if err == nil {
		return exitOK
	}
	code, msg := classify(err)
	fmt.Fprintln(os.Stderr, "shoal: "+msg)
	return code
}

// classify maps an error to an exit code and a one-line message.
func classify(err error) (int, string) {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	var ce *cliError
	switch {
	case errors.As(err, &ce):
		return ce.code, msg
	case errors.Is(err, syscall.ENOSPC):
		return exitDiskFull, msg + " (the disk is full: free some space and run the same command again to resume)"
	case errors.Is(err, seed.ErrBadLink):
		return exitUsage, msg
	case errors.Is(err, seed.ErrNotInLibrary), errors.Is(err, fs.ErrNotExist):
		return exitNotFound, msg
	case errors.Is(err, context.Canceled):
		return exitError, "interrupted; run the same command again to resume"
	}
	if strings.Contains(msg, "no space left on device") {
		return exitDiskFull, msg + " (the disk is full: free some space and run the same command again to resume)"
	}
	return exitError, msg
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

func usage() {
	var b strings.Builder
	b.WriteString(`shoal moves big files to many machines: publish a file or folder, share the
link, and everyone with it downloads from every peer at once.

usage: shoal [global flags] <command> [arguments]

commands:
`)
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	b.WriteString(`
global flags (before or after the command):
  --data DIR     data folder (default $SHOAL_DATA_DIR, $XDG_DATA_HOME/shoal or ~/.local/share/shoal)
  --config FILE  config file (default $SHOAL_CONFIG, $XDG_CONFIG_HOME/shoal/config.json)
  --json         print JSON for scripts

Commands talk to the node running on the data folder (shoal node); when none
runs they start one inside the command for as long as it takes.

exit codes: 0 ok, 1 error, 2 bad usage or bad link, 3 not found,
4 no peer served the content in time, 5 disk full.

Run 'shoal <command> --help' for a command's flags and examples.
`)
	fmt.Fprint(os.Stderr, b.String())
}

func commandUsage(c *command) {
	fmt.Fprintf(os.Stderr, "usage: shoal %s %s\n\n%s\n\nexamples:\n", c.name, c.args, c.summary)
	for _, e := range c.examples {
		fmt.Fprintf(os.Stderr, "  %s\n", e)
	}
}
