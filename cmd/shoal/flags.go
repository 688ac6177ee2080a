package main

import (
	"flag"
	"io"
	"strings"
)

// globals are the flags every command takes.
type globals struct {
	dataDir string
	config  string
	json    bool
}

// parseGlobals takes the global flags out of args, wherever they stand.
func parseGlobals(args []string) (*globals, []string, error) {
	g := &globals{}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest = append(rest, a)
			continue
		}
		switch name {
		case "json":
			g.json = true
		case "data", "config":
			if !hasVal {
				if i+1 >= len(args) {
					return nil, nil, fail(exitUsage, "flag --%s needs a value", name)
				}
				i++
				val = args[i]
			}
			if name == "data" {
				g.dataDir = val
			} else {
				g.config = val
			}
		default:
			rest = append(rest, a)
		}
	}
	return g, rest, nil
}

// parseFlags parses a command's flags, which may stand before, between or
// after its positional arguments, and returns the positionals.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fail(exitUsage, "%s: %v; run 'shoal %s --help'", fs.Name(), err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
