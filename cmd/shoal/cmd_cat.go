package main

import (
	"bufio"
	"errors"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/seed"
)

func init() { addCommand(newCatCmd) }

func newCatCmd(a *app) *cobra.Command {
	var rng string
	c := &cobra.Command{
		Use:   "cat LINK[/PATH]",
		Short: "write content to standard output as it arrives",
		Long: `Write a file (a link or ID, or /PATH of a file inside a folder) to standard
output as its chunks are verified: a player or a pipe starts at once, and
only the chunks it needs are fetched (the node holds them afterwards).
--range A-B writes bytes A to B (inclusive); A- to the end; -N the last N.`,
		Example: `  shoal cat 'shoal:sh1...?name=video.mkv&peer=...' | mpv -
  shoal cat sh1.../docs/readme.txt
  shoal cat sh1... --range 0-1023 | xxd`,
		Args: minArgs(1, "a link or an ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("cat takes one link; run 'shoal cat --help'")
			}
			link, rel := splitLinkPath(args[0])
			off, length, err := parseRange(rng)
			if err != nil {
				return usagef("--range %q: %v", rng, err)
			}
			ctx := cmd.Context()
			node, _, closeNode, err := a.openNode(ctx, false)
			if err != nil {
				return err
			}
			defer closeNode()
			w := bufio.NewWriterSize(a.stdout, 64<<10)
			err = node.Cat(ctx, seed.CatRequest{Link: link, Path: rel, Offset: off, Length: length}, flushEach{w})
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	c.Flags().StringVar(&rng, "range", "", "bytes to write: A-B (inclusive), A- or -N (the last N)")
	return c
}

// flushEach flushes after each write: bytes leave as they are verified.
type flushEach struct{ w *bufio.Writer }

func (f flushEach) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

// splitLinkPath splits "LINK/path/in/folder" into the link and the path.
// The path may follow the ID (shoal:sh1.../a/b?peer=...) or the whole link
// (shoal:sh1...?peer=.../a/b): no part of a link holds a "/".
func splitLinkPath(s string) (link, rel string) {
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return s, ""
	}
	q := strings.IndexByte(s, '?')
	if q < 0 || i > q {
		return s[:i], s[i+1:]
	}
	return s[:i] + s[q:], s[i+1 : q]
}

// parseRange parses A-B, A- or -N into an offset and a length (-1: to the
// end; a negative offset -N: the last N bytes).
func parseRange(s string) (off, length int64, err error) {
	if s == "" {
		return 0, -1, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, errors.New("want A-B, A- or -N")
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, errors.New("want -N with N > 0")
		}
		return -n, -1, nil
	}
	off, err = strconv.ParseInt(a, 10, 64)
	if err != nil || off < 0 {
		return 0, 0, errors.New("bad start " + strconv.Quote(a))
	}
	if b == "" {
		return off, -1, nil
	}
	end, err := strconv.ParseInt(b, 10, 64)
	if err != nil || end < off {
		return 0, 0, errors.New("bad end " + strconv.Quote(b))
	}
	return off, end - off + 1, nil
}
