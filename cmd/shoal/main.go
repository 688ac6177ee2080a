// Command shoal publishes, downloads and seeds content over a peer-to-peer
// swarm. Run "shoal help" for the commands; docs/cli.md describes them all.
//
// Every command is one file (cmd_*.go) that registers a cobra command with
// addCommand; main.go turns errors into exit codes and messages, the same
// way whether a node runs or not (both go through seed.API).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shoal-p2p/shoal/seed"
)

// Exit codes, documented in "shoal help" and docs/cli.md.
const (
	exitOK       = 0
	exitError    = 1 // anything else
	exitUsage    = 2 // bad command line or bad link
	exitNotFound = 3 // a missing path or an ID not in the library
	exitNoPeers  = 4 // no peer served the content in time
	exitDiskFull = 5 // the disk is full
)

// codeUsage is the JSON error code of a bad command line.
const codeUsage = "usage"

// usageError is a bad command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// The first Ctrl-C or SIGTERM cancels with ErrInterrupted (the command
	// ends cleanly, keeping what it verified); a second one kills.
	ctx, cancel := context.WithCancelCause(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		signal.Stop(sig)
		cancel(seed.ErrInterrupted)
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel(nil)
	os.Exit(code)
}

// run runs one command line and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := newRoot(a)
	if len(args) == 0 {
		root.SetOut(stderr)
		root.Help()
		return exitUsage
	}
	root.SetArgs(normalizeArgs(root, args))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code, errCode, msg := classify(err)
	if a.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"error": map[string]any{"code": errCode, "message": msg, "exit_code": code}})
	} else {
		fmt.Fprintln(stderr, "shoal: "+msg)
	}
	return code
}

// classify maps an error to an exit code, a stable error code and a
// one-line message that says what to do next.
func classify(err error) (exit int, code, msg string) {
	msg = strings.ReplaceAll(err.Error(), "\n", " ")
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage, codeUsage, msg
	}
	code = seed.Code(err)
	switch code {
	case seed.CodeBadLink, seed.CodeBadRequest:
		return exitUsage, code, msg
	case seed.CodeNotFound:
		return exitNotFound, code, msg
	case seed.CodeNoPeers:
		return exitNoPeers, code, msg
	case seed.CodeDiskFull:
		if !strings.Contains(msg, "disk is full") {
			msg = "the disk is full: " + msg
		}
		if !strings.Contains(msg, "resume") {
			msg += "; free some space and run the same command again to resume"
		}
		return exitDiskFull, code, msg
	case seed.CodeInterrupted:
		if !strings.Contains(msg, "resume") {
			msg = "interrupted; run the same command again to resume"
		}
		return exitError, code, msg
	}
	return exitError, code, msg
}

// normalizeArgs turns single-dash long flags (-listen, -wait 5s, -o DIR is
// already a shorthand) into the double-dash form pflag reads, so the
// Go-flag spelling of earlier versions keeps working.
func normalizeArgs(root *cobra.Command, args []string) []string {
	long := map[string]bool{"help": true, "version": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) { long[f.Name] = true })
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if long[name] {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}
